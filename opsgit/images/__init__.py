"""Images: Packer runs, manifests, artefact records and promotion."""

"""Load: discover the monorepo's files and turn them into frozen, validated values."""

from opsgit.repo.load import environment_names, load_environment, load_repo, require_environment
from opsgit.repo.values import Environment, Module, ModuleInstance, Repo, Role, RoleTemplate, Variable

__all__ = ["Environment", "Module", "ModuleInstance", "Repo", "Role", "RoleTemplate", "Variable",
           "environment_names", "load_environment", "load_repo", "require_environment"]

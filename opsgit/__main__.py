from opsgit.cli import main

raise SystemExit(main())

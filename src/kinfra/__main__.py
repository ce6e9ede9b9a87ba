from kinfra.cli.main import main

raise SystemExit(main())

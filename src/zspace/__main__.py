from zspace.cli.main import main

raise SystemExit(main())

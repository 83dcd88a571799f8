from adbench.cli import main

raise SystemExit(main())

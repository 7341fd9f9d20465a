"""`python -m connector.sandbox` runs the emulator like `zoho-connector sandbox`."""

from connector.sandbox.server import main

raise SystemExit(main())

"""`python -m grpc_plugin.protos`: print where the bridge contract's `.proto` files are."""

from grpc_plugin.protos import main

raise SystemExit(main())

from deploy.grafana.dashgen.build import main

raise SystemExit(main())

"""One module per dashboard, each a function building it (``generate.DASHBOARDS`` lists them)."""

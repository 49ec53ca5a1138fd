"""The ``omniseg`` command line: one module per subcommand."""

"""Subcommands of the ``mc4-sampling`` console command, one module each."""

"""Statistics over seeds, shared by ``trainer study`` and ``trainer compare``: :mod:`.welch` (mean, sd, Student-t
intervals, Welch's t-test) and :mod:`.bootstrap` (the Multi-Bootstrap of seeds and examples). Pure functions
below both wings: importing this package imports neither."""

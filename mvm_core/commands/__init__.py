"""Sub-commands of the ``mvm`` command line (see :mod:`mvm_core.cli`)."""

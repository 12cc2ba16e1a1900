"""mvm-core's built-ins, registered through the plugin hooks exactly like third-party plugins.

Each module here is one plugin (listed in :data:`mvm_core.plugins.DEFAULT_PLUGINS`); modules import
what they register inside their hooks, so loading them costs nothing until a kind is used.
"""

"""The plugin layer: hook specifications, the pluggy manager that loads plugins, the registry.

Importing it loads no plugin: ``load_plugins()`` / ``get_plugins()`` do, when a command
needs them.
"""

from .manager import PluginInfo, Plugins, get_plugins, get_registry, load_plugins

__all__ = ["PluginInfo", "Plugins", "get_plugins", "get_registry", "load_plugins"]

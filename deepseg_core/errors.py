"""Errors a user sees as one clear line (the CLI prints them without a traceback)."""


class DeepSegError(Exception):
    """A problem with the user's input or environment, worded for the user."""


class ConfigError(DeepSegError):
    """An invalid experiment file: one or more problems, each naming file, key and expectation."""

    def __init__(self, problems):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class RegistryError(DeepSegError):
    """A plugin registration conflict or an unknown registered name."""


class PluginLoadError(DeepSegError):
    """A plugin could not be loaded (raised only in strict mode)."""

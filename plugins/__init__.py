"""The built-in architectures, each a plugin written exactly as a third-party one is."""

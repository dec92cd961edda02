"""The entry layer: the only code that sees argv and Hydra's config; one module per command."""

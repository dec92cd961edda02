"""Configuration: typed specs (``specs``) and the one place that turns a composed Hydra config into them
(``compose``). Nothing below ``imblab.app`` and ``imblab.config`` sees a ``DictConfig``."""

"""The controller manager's controllers: one module each, all built on ``base.Controller``."""

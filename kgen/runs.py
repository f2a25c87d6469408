"""Deprecated alias of `kgen.app.runs` (run machinery) and `kgen.app.presets` (recipes); removed in kgen 0.3."""

from kgen._deprecation import warn_deprecated
from kgen.app.presets import RECIPES, Recipe, diffusion_model, fit_steps  # noqa: F401
from kgen.app.runs import export, load_run, recipe, sample, train  # noqa: F401

warn_deprecated("the module kgen.runs", "kgen.app.runs (train, sample, export) and kgen.app.presets (RECIPES, "
                "diffusion_model, fit_steps)")

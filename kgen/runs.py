"""Deprecated alias of `kgen.app.runs` (run machinery) and `kgen.app.presets` (recipes); removed in kgen 0.3."""

import warnings

from kgen.app.presets import RECIPES, Recipe, diffusion_model, fit_steps  # noqa: F401
from kgen.app.runs import export, load_run, recipe, sample, train  # noqa: F401

warnings.warn("kgen.runs moved to kgen.app.runs (train, sample, export) and kgen.app.presets (recipes, "
              "diffusion_model, fit_steps)", DeprecationWarning, stacklevel=2)

"""The one private module that tests and benchmarks import internals from.

Tests check some numerics directly (the E-step's importance sampler, the
factor rotation, SQUAREM) and benchmarks time them; they take these names
from here, never from the module that defines them, so that moving a helper
inside the package means changing one line below and no test or benchmark.
Names resolve on first use: importing this module imports neither torch nor
the modules whose names are not asked for.

A name ending in ``_module`` is the defining module itself, for the tests
that monkeypatch a solver where the estimator looks it up.
"""

import importlib

# name -> (defining module, attribute or None for the module itself)
_LOCATIONS = {
    # SpreadFactorAnalysis
    "factor_analysis_module": ("skspread._factor_analysis", None),
    "rotate": ("skspread._factor_analysis_solvers", "_rotate"),
    # SpreadICA
    "ica_module": ("skspread._ica", None),
    "ica_em_module": ("skspread._ica_em", None),
    "ica_convergence_module": ("skspread._ica_convergence", None),
    "fit_noise_free": ("skspread._ica_noise_free", "_fit_noise_free"),
    "principal_subspace": ("skspread._ica_noise_free", "_principal_subspace"),
    "set_aside_because": ("skspread._ica_noise_free", "_set_aside_because"),
    "em_step": ("skspread._ica_em", "_em_step"),
    "likelihood_settled": ("skspread._ica_em", "_likelihood_settled"),
    "importance_posterior": ("skspread._ica_sampling", "_importance_posterior"),
    "empty_component_moments": ("skspread._ica_exact", "empty_component_moments"),
    "standard_normal_draws": ("skspread._ica_sampling", "_standard_normal_draws"),
    "MixtureSourceDensity": ("skspread._source_density", "MixtureSourceDensity"),
    "Proposal": ("skspread._ica_sampling", "_Proposal"),
    "draw_sets": ("skspread._ica_sampling", "_draw_sets"),
    "auto_first_draws": ("skspread._ica_draws", "_auto_first_draws"),
    "grown_draws": ("skspread._ica_draws", "_grown_draws"),
    "LIKELIHOOD_DRAW_SHARE": ("skspread._ica_sampling", "_LIKELIHOOD_DRAW_SHARE"),
    "auto_spread_scale": ("skspread._ica_start", "_auto_spread_scale"),
    "initial_mixing": ("skspread._ica_start", "_initial_mixing"),
    "start_density": ("skspread._source_density", "start_density"),
    "source_log_density": ("skspread._sources", "source_log_density"),
    "squarem": ("skspread._squarem", "squarem"),
    # DeltaVAE (torch)
    "resolve_device": ("skspread.deep._device", "resolve_device"),
    "ResidualMap": ("skspread.deep._networks", "ResidualMap"),
    "SpreadModule": ("skspread.deep._spread", "SpreadModule"),
    "Trainer": ("skspread.deep._trainer", "Trainer"),
    "Adam": ("skspread.deep._trainer", "Adam"),
    # The showcase (python -m skspread)
    "showcase_main": ("skspread.__main__", "main"),
    "image_grid": ("skspread._showcase", "image_grid"),
    "LINE_NORM": ("skspread._showcase", "LINE_NORM"),
    "LINE_NOISE_VARIANCE": ("skspread._showcase", "LINE_NOISE_VARIANCE"),
    "QUICK": ("skspread._showcase", "QUICK"),
}

__all__ = sorted(_LOCATIONS)


def __getattr__(name):
    try:
        module_name, attribute = _LOCATIONS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__():
    return __all__

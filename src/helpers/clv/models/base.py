"""The BTYD model wrapper: one base class that owns fitting, remedies, soundness checks and prediction.

In the manner of PyMC-Marketing's ``clv/models/`` (a ``CLVModel`` base class,
one file per model family), over the maximum-likelihood fitters of
``lifetimes``. A :class:`BTYDModel` is one fit of one model family with one
penalizer: the fitted ``lifetimes`` model (None when the fit failed or was
refused), what happened (``message``, ``attempts``) and why a fit was refused
(``boundary``). A family (:mod:`.bgnbd`, :mod:`.pareto`, :mod:`.mbgnbd`) says
only what differs: its ``lifetimes`` fitter, its simulator (:mod:`.simulate`), its starting
points, its likelihood and what its parameters mean on the boundary.

``BTYDModel("bgnbd", 0.0, model)`` builds the family's wrapper (a
:class:`~.bgnbd.BetaGeo`); :meth:`BTYDModel.fit` fits one.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from lifetimes.utils import ConvergenceError

from helpers.clv.summary import distinct_rows
from helpers.errors import DataError

#: What a lifetimes fit raises when it fails (caught, reported and remedied here).
FIT_ERRORS = (ConvergenceError, ValueError, FloatingPointError, np.linalg.LinAlgError)
#: Each family's lifetimes fitter (a test may substitute one) and label, by key; filled by the families.
MODEL_CLASSES: dict[str, type] = {}
MODEL_LABELS: dict[str, str] = {}
FAMILIES: dict[str, type[BTYDModel]] = {}
#: BTYD models describe how purchase rates and dropout vary across a population; below this many
#: customers their four parameters are not identified (one customer gives r in the hundreds of thousands).
MIN_CUSTOMERS = 10
#: Beyond these a fitted parameter sits on the boundary of the model (see :meth:`BTYDModel.boundary_problems`).
SHAPE_MAX = 100.0
SHAPE_MIN = 1e-3
BETA_MIN = 1e-3
BETA_MAX = 1e4
SCALE_MIN = 1e-4  # alpha and Pareto's beta relative to the oldest customer's age


def quiet() -> contextlib.ExitStack:
    """Silence lifetimes: no optimizer report on stdout, no warnings, no numpy floating-point errors."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(np.errstate(all="ignore"))
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    return stack


def check_fittable(summary: pd.DataFrame, what: str) -> None:
    """Raise :class:`DataError` when ``summary`` cannot identify a BTYD model (no repeat buyers, too few customers)."""
    if summary.empty:
        raise DataError(f"{what}: no customers to fit")
    if (summary["frequency"] == 0).all():
        raise DataError(
            f"{what}: none of the {len(summary)} customers made a repeat purchase, so the BTYD models have "
            "nothing to learn the purchase rate from. Use a longer period (an earlier first date or a later "
            "as_of), or a shorter holdout."
        )
    if len(summary) < MIN_CUSTOMERS:
        raise DataError(
            f"{what}: only {len(summary)} customer(s); the BTYD models describe how customers differ and need at "
            f"least {MIN_CUSTOMERS}. Collect more customers (a longer period or the whole customer base)."
        )


def _arrays(summary: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))


@dataclass
class BTYDModel:
    """One fit of a BTYD model family: the lifetimes model (None: failed or refused) and what it took."""

    name: str
    penalizer: float
    model: Any = None
    message: str = ""
    attempts: list[str] = field(default_factory=list)
    boundary: str = ""

    #: The family's key, label, lifetimes fitter, simulator (:mod:`.simulate`: ``f(T, *params, rng)``) and the
    #: parameter names the simulator takes, in its order.
    key: ClassVar[str] = ""
    title: ClassVar[str] = ""
    fitter: ClassVar[type | None] = None
    simulator: ClassVar[Any] = None
    parameter_names: ClassVar[tuple[str, ...]] = ()
    #: True when lifetimes sums the weighted likelihood (the penalizer is scaled on distinct rows).
    sums_likelihood: ClassVar[bool] = False
    fit_options: ClassVar[dict[str, Any]] = {}
    #: A replacement for the lifetimes fitter's ``_fit`` (same optimum, faster), or None for lifetimes' own.
    fast_fit: ClassVar[Any] = None

    def __init_subclass__(cls, *, key: str = "", title: str = "", fitter: type | None = None, simulator: Any = None,
                          parameter_names: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        """A family declares itself in its class line and registers its key: ``class F(BTYDModel, key=..., ...)``."""
        super().__init_subclass__(**kwargs)
        cls.key, cls.title, cls.fitter = key, title, fitter
        cls.simulator = staticmethod(simulator)
        if parameter_names is not None:
            cls.parameter_names = parameter_names
        if key:
            FAMILIES[key], MODEL_CLASSES[key], MODEL_LABELS[key] = cls, fitter, title

    def __new__(cls, name: str = "", *args: Any, **kwargs: Any) -> BTYDModel:
        """``BTYDModel(key, ...)`` is the family's wrapper, so a fit built by hand predicts like a fitted one."""
        return object.__new__(FAMILIES.get(name, cls) if cls is BTYDModel else cls)

    @property
    def ok(self) -> bool:
        """True when the fit is usable (converged, sound)."""
        return self.model is not None

    @property
    def label(self) -> str:
        """The model and its penalizer, for tables and sentences."""
        return f"{MODEL_LABELS[self.name]} (penalizer {self.penalizer:g})"

    # --- the family's part -----------------------------------------------------------------------

    @classmethod
    def default_start(cls) -> np.ndarray:
        """lifetimes' own deterministic starting point (log parameters 0.1)."""
        return np.full(4, 0.1)

    @classmethod
    def seeded_start(cls, seed: int) -> np.ndarray:
        """A second, seeded starting point (the remedy when the first start does not converge)."""
        return np.random.default_rng(seed).normal(0.0, 0.7, 4)

    @classmethod
    def to_start(cls, params: np.ndarray) -> np.ndarray:
        """Fitted parameters in the form lifetimes takes as ``initial_params`` (log parameters)."""
        return np.log(params)

    @classmethod
    def new_fitter(cls, fitter: type, penalizer: float) -> Any:
        """The lifetimes fitter instance that :meth:`fit_lifetimes` fits.

        An instance of the family's own lifetimes class gets the family's
        :attr:`fast_fit` as its ``_fit`` (same arguments and result as lifetimes'
        optimiser, faster); any other class (a test's substitute) keeps its own.
        """
        model = fitter(penalizer_coef=penalizer)
        if cls.fast_fit is not None and fitter is cls.fitter:
            model._fit = cls.fast_fit.__get__(model)
        return model

    @classmethod
    def drop_out_problems(cls, params: dict[str, float], t_max: float | None) -> list[str]:
        """What the family's drop-out parameters mean on the boundary (empty: sound)."""
        raise NotImplementedError

    @classmethod
    def conditional_log_likelihood(cls, params: np.ndarray, f: np.ndarray, r: np.ndarray, t: np.ndarray) -> float:
        """The total log-likelihood (no penalty) of natural ``params`` on these customers."""
        fitter = MODEL_CLASSES[cls.key]
        return float(-fitter._negative_log_likelihood(np.log(params), f, r, t, np.ones_like(f), 0.0) * len(f))

    # --- soundness -------------------------------------------------------------------------------

    @classmethod
    def boundary_problems(cls, params: dict[str, float], t_max: float | None = None) -> list[str]:
        """What is wrong with fitted parameters on the model's boundary, in business terms (empty: sound).

        A "converged" fit can sit where the model degenerates: a Gamma shape
        exploding (with its scale) means the model found no difference between
        customers' rates; a scale (alpha) collapsing to 0 against the oldest
        customer's age ``t_max`` means rates without bound; the family adds
        what its drop-out parameters mean (:meth:`drop_out_problems`).
        Predictions from such fits are not a forecast of this population.
        """
        values = np.array(list(params.values()), dtype=float)
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            return [f"parameters not finite and positive: {params}"]
        out = []
        r, alpha = params["r"], params["alpha"]
        if r > SHAPE_MAX:
            out.append(f"r = {r:.4g} explodes (alpha = {alpha:.4g}): purchase rates do not vary between customers "
                       "(every customer would buy at the same rate)")
        elif r < SHAPE_MIN:
            out.append(f"r = {r:.3g} collapses to 0: almost every customer's purchase rate would be zero")
        if t_max and alpha / t_max < SCALE_MIN:
            out.append(f"alpha = {alpha:.3g} collapses to 0: purchase rates without bound")
        return out + cls.drop_out_problems(params, t_max)

    # --- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit_lifetimes(cls, penalizer: float, summary: pd.DataFrame, tol: float, *, weighted: bool,
                      initial: np.ndarray | None = None, fitter: type | None = None) -> Any:
        """One ``lifetimes`` fit, on distinct rows with weights (``weighted``) or on every customer.

        Both give the same parameters: BG/NBD and MBG/NBD average the weighted
        log-likelihood; Pareto/NBD sums it and divides by the mean weight, so its
        penalizer is scaled by rows / customers to keep the same optimum. After a
        weighted fit ``model.data`` holds the customers (weight 1), so lifetimes'
        plots see the population, not the distinct rows (its recency and T
        share the summary's memory: read them, do not write them).
        """
        fitter = MODEL_CLASSES[cls.key] if fitter is None else fitter
        kwargs: dict[str, Any] = {"tol": tol, **cls.fit_options}
        f, r, t = _arrays(summary)
        kwargs["initial_params"] = cls.default_start() if initial is None else initial
        if not weighted:
            return cls.new_fitter(fitter, penalizer).fit(f, r, t, **kwargs)
        rows, _ = distinct_rows(summary)
        pen = penalizer * len(rows) / len(summary) if cls.sums_likelihood else penalizer
        model = cls.new_fitter(fitter, pen).fit(rows["frequency"].to_numpy(), rows["recency"].to_numpy(),
                                               rows["T"].to_numpy(), weights=rows["weight"].to_numpy(), **kwargs)
        model.penalizer_coef = penalizer
        model.data = pd.DataFrame({"frequency": f.astype(int), "recency": r, "T": t,  # copy=False: no 1M-row
                                   "weights": np.ones(len(f), int)}, index=summary.index, copy=False)  # block copies
        model.generate_new_data = lambda size=1: cls.simulate(model, t, seed=0)  # lifetimes' plots: seeded, vectorised
        return model

    @classmethod
    def starting_values(cls, summary: pd.DataFrame, penalizer: float, sample: int = 20_000,
                        seed: int = 0) -> np.ndarray | None:
        """Starting values for a large fit: the parameters fitted on a seeded sample of customers.

        Returned in the form ``lifetimes`` expects as ``initial_params`` for the
        full data (:meth:`to_start`, with time scaled so the oldest customer's
        age is 1). None for populations of at most ``sample`` customers, or if
        the sample fit fails (lifetimes' own start is used then).
        """
        if len(summary) <= sample:
            return None
        part = summary.sample(sample, random_state=seed)
        try:
            model = cls.fit_lifetimes(penalizer, part, 1e-5, weighted=True)
        except FIT_ERRORS:
            return None
        params = model.params_.copy()
        scale = 1.0 / summary["T"].max()  # lifetimes' own time scaling of the full data
        for name in ("alpha", "beta"):
            if name in params:
                params[name] *= scale
        values = params.to_numpy(dtype=float)
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            return None
        return cls.to_start(values)

    @classmethod
    def fit(cls, summary: pd.DataFrame, penalizer: float = 0.0, *, weighted: bool = True,
            seed: int = 42) -> BTYDModel:
        """Fit this family; on failure try the remedies and say what happened.

        The fit runs on the distinct (frequency, recency, T) rows with weights
        (``weighted``; same optimum as one row per customer, see
        :meth:`fit_lifetimes`), from :meth:`starting_values` fitted on a sample
        when the population is large and from :meth:`default_start` otherwise.
        lifetimes scales time so the oldest customer's age is 1, so days and weeks
        give the same fit. Every start is deterministic (``seed``), so reruns agree.

        The remedies, in order: a second, seeded starting point, a looser
        tolerance, then a larger penalizer. A fit counts as failed when lifetimes
        raises (``ConvergenceError``, linear algebra errors), the parameters are
        not finite and positive, or they sit on the model's boundary
        (:meth:`boundary_problems`); ``boundary`` then says what that means,
        and no remedy is tried (the penalizer grid of the comparison is the place
        for shrinkage, and lifetimes' likelihood is slow near the boundary).
        """
        check_fittable(summary, MODEL_LABELS[cls.key])
        with quiet():
            start = cls.starting_values(summary, penalizer, seed=seed) if weighted else None
        raised = max(10 * penalizer, 0.01)
        tries = [(penalizer, 1e-7, start, "as asked"),
                 (penalizer, 1e-7, cls.seeded_start(seed), "other starting values (seeded)"),
                 (penalizer, 1e-5, None, "looser tolerance 1e-5"),
                 (raised, 1e-7, None, f"penalizer raised to {raised:g}")]
        result = cls(cls.key, penalizer)
        for pen, tol, initial, how in tries:
            try:
                with quiet():  # lifetimes prints the optimizer's report and warns; we report ourselves
                    model = cls.fit_lifetimes(pen, summary, tol, weighted=weighted, initial=initial)
            except FIT_ERRORS as exc:
                result.attempts.append(f"{how}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}")
                continue
            params = model.params_.to_numpy(dtype=float)
            if not np.all(np.isfinite(params)) or np.any(params <= 0) or np.any(params > 1e8):
                result.attempts.append(f"{how}: degenerate parameters {np.round(params, 4).tolist()}")
                continue
            problems = cls.boundary_problems({k: float(v) for k, v in model.params_.items()},
                                             float(summary["T"].max()))
            if problems:  # where these data's likelihood is highest: another start or tolerance would not move it
                result.boundary = problems[0]
                result.attempts.append(f"{how}: boundary solution ({'; '.join(problems)})")
                break
            result.model, result.penalizer, result.boundary = model, pen, ""
            result.message = "converged" if how == "as asked" else f"converged after remedy ({how})"
            result.attempts.append(f"{how}: converged")
            return result
        result.message = (f"unsound: {result.boundary}" if result.boundary else "did not converge") + \
            " (" + "; ".join(result.attempts) + ")"
        return result

    # --- prediction ------------------------------------------------------------------------------

    @property
    def params(self) -> dict[str, float]:
        """The fitted parameters by name (BG/BB: alpha, beta of the transaction Beta; gamma, delta of drop-out)."""
        return {k: float(v) for k, v in self.model.params_.items()}

    def log_likelihood(self, summary: pd.DataFrame) -> float:
        """The model's total log-likelihood on ``summary`` (no penalty), as reported in the papers."""
        return self.conditional_log_likelihood(self.model.params_.to_numpy(dtype=float), *_arrays(summary))

    def on_distinct_rows(self, summary: pd.DataFrame, compute: Any) -> pd.Series:
        """Evaluate ``compute(frequency, recency, T)`` once per distinct row and spread it over the customers."""
        rows, inverse = distinct_rows(summary)
        with np.errstate(all="ignore"):
            values = np.asarray(compute(rows["frequency"].to_numpy(), rows["recency"].to_numpy(),
                                        rows["T"].to_numpy()), dtype=float)
        return pd.Series(values[inverse], index=summary.index)

    def expected_purchases(self, summary: pd.DataFrame, t: float) -> pd.Series:
        """Expected purchases in the next ``t`` time units for each customer of ``summary``."""
        expected = self.model.conditional_expected_number_of_purchases_up_to_time
        return self.on_distinct_rows(summary, lambda f, r, T: expected(t, f, r, T))

    def p_alive(self, summary: pd.DataFrame) -> pd.Series:
        """Probability that each customer is still active at the end of ``summary``'s period."""
        return self.on_distinct_rows(summary, self.model.conditional_probability_alive).clip(0, 1)

    def non_finite_predictions(self, summary: pd.DataFrame, t: float, predicted: pd.Series | None = None) -> int:
        """How many customers get a non-finite expected purchases over ``t`` or P(alive) (0: usable).

        lifetimes' hypergeometric terms overflow for some parameters and customers;
        such a fit must not price anyone. ``predicted`` passes the caller's
        :meth:`expected_purchases` over ``t`` when it has them already.
        """
        predicted = self.expected_purchases(summary, t) if predicted is None else predicted
        alive = self.on_distinct_rows(summary, self.model.conditional_probability_alive)
        return int((~np.isfinite(predicted.to_numpy()) | ~np.isfinite(alive.to_numpy())).sum())

    @classmethod
    def simulate(cls, model: Any, T: np.ndarray, seed: int = 0) -> pd.DataFrame:
        """A seeded cohort drawn from a fitted lifetimes ``model``, one customer per entry of ``T``.

        The family's vectorised simulator (:mod:`.simulate`): frequency,
        recency, T and whether the customer is still alive at T.
        """
        return cls.simulator(np.asarray(T), *model._unload_params(*cls.parameter_names), np.random.default_rng(seed))

    def period_transactions(self, summary: pd.DataFrame, max_frequency: int = 7, sample: int = 1_000_000,
                            seed: int = 0) -> pd.DataFrame:
        """Share of customers with 0, 1, ... repeat purchases: actual against simulated from the fitted model.

        The check of lifetimes' ``plot_period_transactions``, as shares so that
        populations of any size compare: each customer of ``summary`` (a seeded
        sample of at most ``sample``) is simulated once over its own ``T``. The
        last row counts ``max_frequency`` or more.
        """
        part = summary.sample(sample, random_state=seed) if len(summary) > sample else summary
        simulated = self.simulate(self.model, part["T"].to_numpy(), seed)

        def shares(freq: pd.Series) -> pd.Series:
            counts = freq.clip(upper=max_frequency).astype(int).value_counts()
            return (counts.reindex(range(max_frequency + 1), fill_value=0) / len(freq)).rename_axis("repeat_purchases")

        return pd.DataFrame({"actual": shares(part["frequency"]), "model": shares(simulated["frequency"])})


def family_of(fitter: type) -> type[BTYDModel]:
    """The wrapper family of a lifetimes fitter class (or of a subclass of one)."""
    return next(FAMILIES[k] for base in fitter.__mro__ for k, f in FAMILIES.items() if f.fitter is base)

"""Classical baselines on pooled features: SVM, KNN, random forest, decision tree.

Each is a ``Pipeline(StandardScaler, estimator)`` tuned with ``GridSearchCV`` whose inner
splits are ``GroupKFold`` by speaker over the *training* clips only, so no test speaker ever
influences a hyper-parameter. Grids are small so that all four fit in seconds on 2 cores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ser_model.errors import ParameterError

BASELINES: tuple[str, ...] = ("svm", "knn", "rf", "dt")


def _estimator(name: str, seed: int) -> tuple[Any, dict[str, list]]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    if name == "svm":
        return SVC(kernel="rbf", class_weight="balanced"), {"clf__C": [1.0, 10.0], "clf__gamma": ["scale"]}
    if name == "knn":
        return KNeighborsClassifier(), {"clf__n_neighbors": [5, 15], "clf__weights": ["distance"]}
    if name == "rf":
        return (RandomForestClassifier(n_estimators=200, class_weight="balanced", random_state=seed, n_jobs=1),
                {"clf__max_features": ["sqrt"], "clf__min_samples_leaf": [1, 3]})
    if name == "dt":
        return (DecisionTreeClassifier(class_weight="balanced", random_state=seed),
                {"clf__max_depth": [8, 16], "clf__min_samples_leaf": [2, 8]})
    raise ParameterError(f"unknown baseline {name!r}; choose from {BASELINES}")


def fit_baseline(name: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, seed: int = 0,
                 inner_folds: int = 3, n_jobs: int = 1):
    """Fit baseline ``name`` on pooled features ``x`` (n, D), labels ``y`` (n,), speakers ``groups``.

    Hyper-parameters are chosen by balanced accuracy (UAR) with ``GroupKFold`` over speakers
    (at most ``inner_folds`` splits, fewer when there are fewer speakers); with fewer than two
    speakers the first grid point is used. Returns the refitted best ``GridSearchCV``-chosen
    Pipeline (``.predict`` gives label indices).
    """
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    est, grid = _estimator(name, seed)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", est)])
    n_groups = len(np.unique(groups))
    if n_groups < 2 or len(np.unique(y)) < 2:
        pipe.set_params(**{k: v[0] for k, v in grid.items()})
        return pipe.fit(x, y)
    search = GridSearchCV(pipe, grid, scoring="balanced_accuracy", cv=GroupKFold(n_splits=min(inner_folds, n_groups)),
                          n_jobs=n_jobs, refit=True, error_score="raise")
    search.fit(x, y, groups=groups)
    return search.best_estimator_

"""Placeholder replaced below."""


def evaluate_cascade(cascade, arch, fused=None):  # noqa: ANN001, ANN201
    raise NotImplementedError

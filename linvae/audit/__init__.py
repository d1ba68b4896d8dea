"""Audit any linear-Gaussian VAE against the analytic optimum (issue 7).

``audit`` splits a model's excess loss over the optimum into an encoder, a bias and a
decoder part along one chain of best responses (eqs. 21–23), measures the decoder's
geometry against water-filling, and says which latents are active, collapsed or wasted.
``effective_beta`` maps a training convention to the β of the unit-variance model.
"""

from ._audit import STATUS_TOLERANCE, Audit, audit
from ._conventions import effective_beta, parse_convention
from ._geometry import Geometry

__all__ = ["STATUS_TOLERANCE", "Audit", "Geometry", "audit", "effective_beta", "parse_convention"]

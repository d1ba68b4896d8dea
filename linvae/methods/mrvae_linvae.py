"""``mrvae-linvae``: linvae's MR-VAE (:class:`linvae.mrvae.model.LatentMRVAE`, one gate per
latent: Theorem 1's joint construction, floor 0) and linvae's recipe.

Exact objective: :func:`linvae.mrvae.recipe.train_recipe` (whitened encoder, stratified β,
Adam, then an L-BFGS polish of a third of the Adam steps). Sampled ELBO: linvae's sampled
recipe, :func:`linvae.mrvae.sampled.train_sampled_recipe` (its defaults but the steps).
"""

from __future__ import annotations

from linvae.mrvae.maps import maps_of_model
from linvae.mrvae.model import LatentMRVAE
from linvae.mrvae.recipe import RecipeConfig, train_recipe
from linvae.mrvae.sampled import SampledConfig, train_sampled_recipe

from ._base import Budget, Method, Trained, register
from ._family import mrvae_floor

#: The family of LatentMRVAE for :func:`linvae.mrvae.floor.representation_floor`.
GATES = {"encoder_gate": "sqrt", "decoder_gate": "sqrt", "covariance_gate": "hinge",
         "gate_input": "log_beta"}  # fmt: skip


def train(X, beta_range, budget: Budget) -> Trained:
    """LatentMRVAE by linvae's recipe (exact) or by the sampled ELBO's loop (sampled)."""
    model = LatentMRVAE(X.shape[1], budget.latent, beta_range=tuple(beta_range),
                        seed=budget.seed)  # fmt: skip
    if budget.objective == "exact":
        config = RecipeConfig(steps=budget.steps, polish_iterations=max(1, budget.steps // 3),
                              seed=budget.seed)  # fmt: skip
        result = train_recipe(model, X, config, beta_range=tuple(beta_range))
        notes = {**config.to_dict(), "trainer": "linvae.mrvae.recipe.train_recipe"}
    else:
        result, notes = _train_sampled(model, X, beta_range, budget)
    notes.update(steps=result.steps, diverged_at=result.diverged_at)
    return Trained(lambda log_beta: maps_of_model(model, log_beta), model, notes)


def _train_sampled(model, X, beta_range, budget: Budget):
    config = SampledConfig(steps=budget.steps, seed=budget.seed)
    result = train_sampled_recipe(model, X, tuple(beta_range), config)
    notes = {**config.to_dict(), "learning_rate": result.learning_rate}
    return result, {**notes, "trainer": "linvae.mrvae.sampled.train_sampled_recipe"}


def floor(trained: Trained, X, betas, beta_range, iterations):
    """``--floor model`` of LatentMRVAE: Theorem 1's construction, exact (0, no fit)."""
    family = {**GATES, "hidden": trained.model.k}
    return mrvae_floor(X, betas, beta_range, trained.model.k, family, iterations)


METHOD = register(
    Method(
        "mrvae-linvae",
        "linvae's MR-VAE (one gate per latent, Theorem 1's construction) by linvae's recipe "
        "(exact) or linvae's sampled recipe (sampled ELBO)",
        train,
        floor,
    )
)

"""The learner's parts, the same for every driver: networks, rollouts, returns, losses, gradients,
optimizers, and the messages learners send. Nothing here knows about processes or run directories."""

"""What runs inside a Ray worker: models, losses, data decoding and the training loop."""

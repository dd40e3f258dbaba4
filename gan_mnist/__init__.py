"""gan_mnist: a DCGAN that learns to draw handwritten digits (TensorFlow 2 / Keras 3)."""

from gan_mnist import quiet

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notes) hides the useful
# output; a user who wants it sets TF_CPP_MIN_LOG_LEVEL or passes --debug.
quiet.install()

__version__ = "0.1.0"

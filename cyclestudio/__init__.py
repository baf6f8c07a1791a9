"""cyclestudio: unpaired image-to-image translation (CycleGAN) as a desktop tool."""

__version__ = "0.1.0"

"""Loss terms of the method (METHOD.md), one module per family.

- :mod:`.contrast`: image-grain ratio contrast (``ratio_contrast``), feature-grain InfoNCE
  (``info_nce``, ``feature_contrast``) and the frozen feature extractors phi they use
  (``TeacherEncoderFeatures``, ``VGGFeatures``).
- :mod:`.distill`: stage 1's output distillation, ground-truth term and collaborative feature
  transfer (``FeatureTransfer``, ``feature_transfer_loss``).
- :mod:`.frequency`: the frequency reconstruction term (``fft_l1``: L1 on the orthonormal
  spectrum), stage 1's ``fft_weight``.
- :mod:`.adversarial`, :mod:`.cluster`: stage 2's GAN losses and cluster-grained contrast.

Import the submodules directly (``from uniremoval.losses.contrast import ratio_contrast``);
this package imports nothing so that stages only pay for what they use.
"""

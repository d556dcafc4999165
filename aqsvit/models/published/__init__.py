"""Published spiking transformers, each computing exactly what its authors' eval forward computes.

One module per architecture; each registers its published configurations with the reference
(``owner/repo@commit path``) it is faithful to and the input preprocessing its weights expect.

Adding an architecture: a module here whose models keep the authors' parameter names (or define
``map_reference_state``), set ``unused_reference_keys`` (a regex of published keys their forward never
uses), register each published configuration with
``@register_model(reference="owner/repo@commit path", preprocess=...)``, import it below, add a
``aqsvit/conf/model/<name>.yaml`` per configuration and a parity case module in ``benchmarks/parity/``.
"""
from aqsvit.models.published import qkformer, sdt, spikformer  # noqa: F401  (registers the builders)

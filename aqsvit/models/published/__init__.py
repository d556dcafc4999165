"""Published spiking transformers, each computing exactly what its authors' eval forward computes.

One module per architecture; each registers its published configurations with the reference
(``owner/repo@commit path``) it is faithful to and the input preprocessing its weights expect.

Adding an architecture: a module here whose models keep the authors' parameter names (or define
``map_reference_state``), set ``unused_reference_keys`` (a regex of published keys their forward never
uses), list each published configuration as a :class:`~aqsvit.models.published.configs.Published`
row of its ``PUBLISHED`` table (the name written out, the reference file, the preprocessing, the
builder's defaults) and register the table with
:func:`~aqsvit.models.published.configs.register_published`, import it below, add a
``aqsvit/conf/model/<name>.yaml`` per configuration and a parity case module in ``benchmarks/parity/``.
"""
from aqsvit.models.published import qkformer, sdt, spikformer  # noqa: F401  (registers the builders)

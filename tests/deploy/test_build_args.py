"""Image builds reach the package index the way this host's pip does, without its local paths."""

from __future__ import annotations

from tests.support.docker import IMAGE_CERT_BUNDLE, pip_build_args


def test_remote_settings_pass_and_local_ones_stay_out() -> None:
    args = pip_build_args(
        {
            "index-url": "https://mirror.example/simple",
            "extra-index-url": "file:///opt/pypi/simple https://extra.example/simple",
            "find-links": "/opt/wheels",
            "constraint": "/etc/xdg/pip/constraints.txt",
            "trusted-host": "mirror.example",
            "default-timeout": "180",
            "cert": "/etc/ssl/certs/host-bundle.crt",
        }
    )
    assert args == {
        "PIP_INDEX_URL": "https://mirror.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://extra.example/simple",
        "PIP_TRUSTED_HOST": "mirror.example",
        "PIP_DEFAULT_TIMEOUT": "180",
        # The image's own bundle (the prepared base holds the host's CAs), never the host's file.
        "PIP_CERT": IMAGE_CERT_BUNDLE,
    }


def test_no_configuration_means_no_arguments() -> None:
    assert pip_build_args({}) == {}
    assert pip_build_args({"extra-index-url": "file:///opt/pypi/simple"}) == {}

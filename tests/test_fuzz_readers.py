"""Generated malformed files for every annotation reader and the image and mask decoders (``tests/fuzzing.py``):
each reads, or fails with omniseg's own error naming the file. A bounded, derandomised number of examples here;
``benchmarks/fuzz_readers.py`` runs thousands."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from .fuzzing import TARGETS, check, read_everything, reproducer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the broken TIFF tags it skips


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_malformed_files_fail_in_omnisegs_own_words(name):
    target = TARGETS[name]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fuzzed = target.build(root)
        valid = fuzzed.read_bytes()
        assert read_everything(root, target.format) > 0  # the unchanged dataset reads

        @settings(max_examples=100, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
        @given(st.data())
        def malformed(data):
            generated = data.draw(target.mutations(valid))
            problem = check(root, target, fuzzed, generated)
            assert problem is None, f"{problem}\ninput: {reproducer(generated)}"

        malformed()


def test_a_polygon_far_outside_the_image_is_cut_not_walked():
    import numpy as np
    from pycocotools import mask as mask_utils

    from omniseg.data.formats.objects import object_mask

    far = [0, 0, 1e12, 0, 1e12, 1e12]  # pycocotools alone would step along 1e12 pixels
    near = [0, 0, 1e4, 0, 1e4, 1e4]
    assert np.array_equal(object_mask([far], 20, 24), mask_utils.decode(mask_utils.frPyObjects([near], 20, 24))[..., 0].astype(bool))
    rng = np.random.default_rng(0)
    for _ in range(50):  # within the window: exactly pycocotools' mask
        polygon = rng.uniform(-60, 80, 2 * rng.integers(3, 9)).tolist()
        assert np.array_equal(object_mask([polygon], 20, 24), mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([polygon], 20, 24))).astype(bool))


PNG_WITH_A_4_GB_CHUNK = (b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x18\x00\x00\x00\x14\x08\x00\x00\x00\x00\xb2\xde\xa2_\xfe\x00\x00'
                         b'\'IDATx\x9cW\xf8\xcf@"`\x84b\x06\x06\x06\x06\x06d\xddL\xb8t\x0c\xa8\x04\x15\x01#.\x9b\x06\xa7\xcfqJ\x00\x00\xc2'
                         b'\xbb\x02\x1e\xa0\x8aF\xa0\x00\x00\x00\x00IEND\xaeB^\x82')


@pytest.mark.parametrize("name, edit", [
    ("cvat", lambda valid: valid.replace(b'encoding="utf-8"', b'encoding="utf1e309"')),  # an unknown encoding
    ("labelme", lambda valid: valid.replace(b'"imageData": null', b'"imageData": -421')),  # a number for base64 text
    ("coco_panoptic", lambda valid: valid.replace(b'"file_name": "a.png"', b'"file_name": ""')),  # a folder for a PNG
    ("mask_png", lambda valid: PNG_WITH_A_4_GB_CHUNK),
])
def test_inputs_the_fuzzer_found(name, edit):
    target = TARGETS[name]
    with tempfile.TemporaryDirectory() as tmp:
        fuzzed = target.build(Path(tmp))
        generated = edit(fuzzed.read_bytes())
        assert generated != fuzzed.read_bytes()
        assert check(Path(tmp), target, fuzzed, generated) is None

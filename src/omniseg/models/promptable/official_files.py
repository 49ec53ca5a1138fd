"""The released Segment Anything files by name, and their published sha256: an official file name holding other
bytes (an interrupted download, an altered file) is refused before it is read.

SAM 1's digests are those its release lists; SAM 2's and 2.1's are the Git LFS digests of the released ``.pt`` files as
published on the Hugging Face hub (facebook/sam2-hiera-*; the 2.1 files as mirrored there byte for byte).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from omniseg.errors import ConfigError

OFFICIAL_SHA256 = {
    "sam_vit_b_01ec64.pth": "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
    "sam_vit_l_0b3195.pth": "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
    "sam_vit_h_4b8939.pth": "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
    "mobile_sam.pt": "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
    "sam2_hiera_tiny.pt": "65b50056e05bcb13694174f51bb6da89c894b57b75ccdf0ba6352c597c5d1125",
    "sam2_hiera_small.pt": "95949964d4e548409021d47b22712d5f1abf2564cc0c3c765ba599a24ac7dce3",
    "sam2_hiera_base_plus.pt": "d0bb7f236400a49669ffdd1be617959a8b1d1065081789d7bbff88eded3a8071",
    "sam2_hiera_large.pt": "7442e4e9b732a508f80e141e7c2913437a3610ee0c77381a66658c3a445df87b",
    "sam2.1_hiera_tiny.pt": "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
    "sam2.1_hiera_small.pt": "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
    "sam2.1_hiera_base_plus.pt": "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
    "sam2.1_hiera_large.pt": "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
}


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_official_file(path: str | Path) -> None:
    """A file named as a released one must hold its bytes (other names are not checked)."""
    path = Path(path)
    expected = OFFICIAL_SHA256.get(path.name)
    if expected is not None and path.is_file():
        actual = file_sha256(path)
        if actual != expected:
            raise ConfigError(f"{path} has sha256 {actual[:12]}..., not the official file's {expected[:12]}...; "
                              "the download is incomplete or altered: download it again")

import torch
from torchvision import tv_tensors

from omniseg.data.transforms import PadCollate, eval_transforms, train_transforms


def _sample(h=40, w=56):
    mask = torch.zeros(h, w, dtype=torch.int64)
    mask[5:20, 10:30] = 3
    mask[25:35, 40:50] = 1
    # the image encodes the mask, so alignment after augmentation can be checked
    image = (mask * 60).to(torch.uint8).expand(3, h, w).clone()
    return {"image": tv_tensors.Image(image), "mask": tv_tensors.Mask(mask), "meta": {"id": "x"}}


def test_train_pipeline_keeps_image_and_mask_aligned_and_labels_exact():
    torch.manual_seed(0)
    t = train_transforms(img_size=32, scale_range=(0.5, 2.0), color_jitter=0.0, mean=(0, 0, 0), std=(1, 1, 1))
    for _ in range(30):
        out = t(_sample())
        image, mask = out["image"], out["mask"]
        assert image.shape == (3, 32, 32) and mask.shape == (32, 32) and image.dtype == torch.float32
        assert set(mask.unique().tolist()) <= {0, 1, 3, 255}  # nearest only: no blended labels
        inside = (mask == 3)
        if inside.sum() > 20:  # away from edges the image still shows label 3's intensity
            assert (image[0][inside] * 255 - 180).abs().median() < 2


def test_eval_pipeline_is_normalisation_only():
    out = eval_transforms(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))(_sample())
    assert out["image"].shape == (3, 40, 56)
    assert torch.equal(out["mask"], _sample()["mask"])
    assert out["image"].min() == -1.0


def test_pad_collate_pads_with_ignore_index():
    a, b = _sample(10, 12), _sample(14, 9)
    batch = PadCollate(ignore_index=255)([a, b])
    assert batch["image"].shape == (2, 3, 14, 12) and batch["mask"].shape == (2, 14, 12)
    assert (batch["mask"][0, 10:] == 255).all() and (batch["mask"][1, :, 9:] == 255).all()
    assert batch["size"].tolist() == [[10, 12], [14, 9]]


def test_transforms_do_not_modify_the_input():
    sample = _sample()
    before = sample["mask"].clone(), sample["image"].clone()
    train_transforms(img_size=24)(sample)
    assert torch.equal(sample["mask"], before[0]) and torch.equal(sample["image"], before[1])

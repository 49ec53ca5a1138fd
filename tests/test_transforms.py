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
    t = train_transforms(img_size=32, scale_range=(0.5, 2.0), color_jitter=0.0, mean=(0, 0, 0), std=(1, 1, 1), ignore_index=255)
    for _ in range(300):
        out = t(_sample())
        image, mask = out["image"], out["mask"]
        assert image.shape == (3, 32, 32) and mask.shape == (32, 32) and image.dtype == torch.float32
        assert set(mask.unique().tolist()) <= {0, 1, 3, 255}  # nearest only: no blended labels
        # away from its edges (a 3x3 neighbourhood all label 3) the image shows label 3's intensity
        inside = -torch.nn.functional.max_pool2d(-(mask == 3).float()[None], 3, 1, 1)[0] > 0
        if inside.sum() > 4:
            assert (image[0][inside] * 255 - 180).abs().max() < 2


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
    train_transforms(img_size=24, ignore_index=255)(sample)
    assert torch.equal(sample["mask"], before[0]) and torch.equal(sample["image"], before[1])


def test_colour_jitter_steps_equal_torchvision_and_hue_keeps_grey():
    from torchvision.transforms.v2 import functional as F

    from omniseg.data.transforms import ColourJitterNormalize

    jitter = ColourJitterNormalize(0.3, 0.075, (0, 0, 0), (1, 1, 1))
    image = tv_tensors.Image(torch.randint(0, 256, (3, 9, 11), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)))
    x = image.float() / 255
    identity = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0}
    assert torch.allclose(jitter.transform(image, identity), x, atol=1e-6)
    for key, value, reference in (("brightness", 1.2, F.adjust_brightness), ("contrast", 0.7, F.adjust_contrast),
                                  ("saturation", 1.3, F.adjust_saturation)):
        assert torch.allclose(jitter.transform(image, {**identity, key: value}), reference(x, value), atol=1e-4), key
    grey = tv_tensors.Image(torch.full((3, 4, 4), 90, dtype=torch.uint8))
    assert torch.allclose(jitter.transform(grey, {**identity, "hue": 0.2}), grey.float() / 255, atol=1e-5)
    normalised = ColourJitterNormalize(0.3, 0.0, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)).transform(image, identity)
    assert torch.allclose(normalised, (x - 0.5) / 0.25, atol=1e-5)


def test_scale_jitter_crop_scales_as_scale_jitter():
    from omniseg.data.transforms import ScaleJitterCrop

    crop = ScaleJitterCrop(64, (0.5, 2.0), fill={tv_tensors.Image: 0, tv_tensors.Mask: 255})
    torch.manual_seed(0)
    sample = {"image": tv_tensors.Image(torch.zeros(3, 100, 200, dtype=torch.uint8)), "mask": tv_tensors.Mask(torch.ones(100, 200, dtype=torch.int64))}
    labelled = []
    for _ in range(200):
        out = crop(sample)
        assert out["image"].shape == (3, 64, 64) and set(out["mask"].unique().tolist()) <= {1, 255}
        labelled.append(int((out["mask"] == 1).sum()))
    # the image fits 64 wide at scale 1 (32 rows): at u in [0.5, 2] it covers 16..64 rows of the crop,
    # so the labelled share is u * 32 * min(64, u * 64) / 64^2 on average over u
    u = torch.linspace(0.5, 2.0, 10001)
    expected = float((torch.clamp(u * 32, max=64) * torch.clamp(u * 64, max=64)).mean())
    assert abs(sum(labelled) / len(labelled) - expected) < 0.06 * expected


def test_flips_and_quarter_turns_move_the_mask_with_the_image():
    from omniseg.data.transforms import RandomFlipRotate

    image = torch.arange(12, dtype=torch.uint8).view(1, 3, 4).expand(3, 3, 4).contiguous()
    sample = {"image": tv_tensors.Image(image), "mask": tv_tensors.Mask(torch.arange(12).view(3, 4))}
    transform = RandomFlipRotate(hflip=True, vflip=True, rot90=True)
    seen = set()
    torch.manual_seed(0)
    for _ in range(64):
        out = transform(sample)
        assert torch.equal(out["image"][0].long(), out["mask"]) and isinstance(out["mask"], tv_tensors.Mask)
        seen.add(tuple(out["mask"].reshape(-1).tolist()))
    assert len(seen) == 8  # the eight symmetries of the rectangle's grid (quarter turns swap its sides)
    assert torch.equal(sample["mask"], torch.arange(12).view(3, 4))  # the input is left as it was

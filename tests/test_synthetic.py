import numpy as np

from omniseg.data.synthetic import CLASS_NAMES, SyntheticShapes, generate_scene


def test_scenes_are_a_pure_function_of_seed_and_index():
    a, b, c = generate_scene(1, 7, size=64), generate_scene(1, 7, size=64), generate_scene(2, 7, size=64)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.semantic, b.semantic)
    assert not np.array_equal(a.image, c.image)


def test_instances_agree_with_the_semantic_mask():
    for index in range(20):
        scene = generate_scene(0, index, size=64)
        assert scene.image.shape == (64, 64, 3) and scene.image.dtype == np.uint8
        if len(scene.instance_labels) == 0:
            continue
        union = scene.instance_masks.any(0)
        assert np.array_equal(union, scene.semantic > 0)
        assert scene.instance_masks.sum(0).max() == 1  # visible parts are disjoint
        for mask, label in zip(scene.instance_masks, scene.instance_labels):
            assert (scene.semantic[mask] == label).all()


def test_colour_does_not_give_the_class():
    # the mean colour of each class varies as much within a class as between classes
    colours = {k: [] for k in range(1, len(CLASS_NAMES))}
    for index in range(60):
        scene = generate_scene(0, index, size=64)
        for mask, label in zip(scene.instance_masks, scene.instance_labels):
            colours[int(label)].append(scene.image[mask].mean(0))
    means = np.array([np.mean(v, 0) for v in colours.values()])
    within = np.mean([np.std(v, 0).mean() for v in colours.values()])
    assert all(len(v) > 10 for v in colours.values())
    assert means.std(0).mean() < 0.3 * within


def test_dataset_yields_samples_with_instances():
    dataset = SyntheticShapes(3, size=32, seed=0)
    sample = dataset[1]
    assert sample["image"].shape == (3, 32, 32) and sample["mask"].shape == (32, 32)
    inst = sample["instances"]
    assert inst["masks"].shape[0] == inst["labels"].shape[0] == inst["boxes"].shape[0]
    assert dataset.info.things == [1, 2, 3, 4]

"""SAM 2's image path in ONNX: the encoder graph (embedding and the two high-resolution maps) and the decoder graph
(SAM's prompt inputs, the object score besides) give onnxruntime the PyTorch model's answers, for any number of points
and any image size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

SMALL = dict(image_size=128, d_model=32, mem_dim=16, memory_layers=1, memory_feedforward=32, embed_dim=16, num_heads=1,
             stages=(1, 1, 2, 1), global_att_blocks=(3,), window_pos_embed_bkg_spatial_size=(4, 4), window_spec=(4, 2, 2, 2))


def test_sam2_exports_to_onnx_and_answers_as_the_model(tmp_path, run_cli):
    import json

    import onnxruntime as ort

    from omniseg.core.info import DatasetInfo
    from omniseg.models import ModelCard, save_model
    from omniseg.models.promptable.sam2 import sam2_model

    torch.manual_seed(3)
    model = sam2_model(**SMALL).eval()
    save_model(model, tmp_path / "run", ModelCard("sam2", {"size": None, **SMALL}, DatasetInfo(["background", "object"], ignore_index=255),
                                                  task="promptable"))
    code, _, err = run_cli("export", tmp_path / "run", "--out", tmp_path / "onnx", "--json", tmp_path / "export.json")
    assert code == 0, err
    report = json.loads((tmp_path / "export.json").read_text())
    assert report["decoder_max_abs_difference"] <= 1e-4 and report["encoder_max_abs_difference"] <= 1e-4
    encoder = ort.InferenceSession(report["encoder"], providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(report["decoder"], providers=["CPUExecutionProvider"])
    assert [o.name for o in decoder.get_outputs()] == ["masks", "iou_predictions", "low_res_masks", "object_score_logits"]
    image = torch.randint(0, 256, (3, 90, 200), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features, _ = model.encode_image(image)
    graph_features = encoder.run(None, {"image": model.preprocess(image[None]).numpy()})
    assert max(float(np.abs(g - f.numpy()).max()) for g, f in zip(graph_features, features)) <= 1e-4
    # two clicks in the squashed input frame; SAM 2's prompt encoder pads a (0, 0, -1) point, the graph's caller does
    clicks = torch.tensor([[[30.0, 60.0], [100.0, 20.0]]])
    labels = torch.tensor([[1, 0]])
    with torch.no_grad():
        expected_masks, expected_iou, expected_scores = model.predict(features, points=clicks, labels=labels, multimask=True)
    masks, iou, low_res, scores = decoder.run(None, {
        "image_embed": graph_features[0], "high_res_feats_0": graph_features[1], "high_res_feats_1": graph_features[2],
        "point_coords": np.array([[[30.0, 60.0], [100.0, 20.0], [0.0, 0.0]]], np.float32),
        "point_labels": np.array([[1, 0, -1]], np.float32), "mask_input": np.zeros((1, 1, 32, 32), np.float32),
        "has_mask_input": np.zeros(1, np.float32), "orig_im_size": np.array([90, 200], np.float32)})
    assert masks.shape == (1, 4, 90, 200) and low_res.shape == (1, 4, 32, 32)
    np.testing.assert_allclose(low_res[:, 1:], expected_masks.numpy(), atol=1e-4)  # the three proposals
    np.testing.assert_allclose(iou[:, 1:], expected_iou.numpy(), atol=1e-5)
    np.testing.assert_allclose(scores, expected_scores.numpy(), atol=1e-5)
    np.testing.assert_allclose(masks, model.postprocess_masks(torch.from_numpy(low_res), (128, 128), (90, 200)).numpy(), atol=1e-4)


def test_a_single_mask_graph_chooses_as_sam2_does(tmp_path):
    from omniseg.inference.promptable.export_sam import Sam2PromptDecoder, decoder_example, export_sam_onnx
    from omniseg.models.promptable.sam2 import sam2_model

    torch.manual_seed(4)
    model = sam2_model(**SMALL).eval()
    report = export_sam_onnx(model, tmp_path, single_mask=True)
    assert report["decoder_max_abs_difference"] <= 1e-4 and not model.training  # the export leaves the model as it was
    inputs = decoder_example(model, points=5)  # a click, a background click, a box's corners, the padding point
    embedding, *high_res = (inputs[k] for k in ("image_embed", "high_res_feats_0", "high_res_feats_1"))
    with torch.no_grad():
        masks, iou, low_res, _ = Sam2PromptDecoder(model, single_mask=True)(*inputs.values())
        expected, expected_iou, _ = model.predict((embedding, *high_res), points=inputs["point_coords"][:, :4],
                                                  labels=inputs["point_labels"][:, :4].long(), mask_input=inputs["mask_input"],
                                                  multimask=False)
    assert low_res.shape == (1, 1, 32, 32)
    torch.testing.assert_close(low_res, expected)
    torch.testing.assert_close(iou, expected_iou)

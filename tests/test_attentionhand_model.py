"""AttentionHand on tiny random SD-layout models: ldm checkpoint import, attention capture, the text attention
stage and a training run that lowers the loss."""

import math

import pytest
import torch
from diffusers.loaders import single_file_utils

from hands.attentionhand.attention import (
    TextAttentionConfig,
    attend_and_excite_loss,
    attention_loss_and_gradient,
    capture_cross_attention,
    step_sizes,
    text_attention_update,
    token_attention_peaks,
)
from hands.attentionhand.components import encode_prompts, load_parts
from hands.attentionhand.ldm_checkpoint import CheckpointError, load_ldm_state_dict, to_ldm_state_dict
from hands.attentionhand.tokenizer import hand_token_positions
from hands.attentionhand.training import AttentionHandModule, AttentionHandTrainConfig, controlled_noise_prediction

PROMPTS = ["a hand holding a cup", "two fingertips touching a ball"]


def outputs(parts, seed=0):
    """UNet+ControlNet noise, VAE reconstruction and text features of fixed inputs."""
    g = torch.Generator().manual_seed(seed)
    latents, hint = torch.randn(2, 4, 16, 16, generator=g), torch.rand(2, 3, 128, 128, generator=g)
    with torch.no_grad():
        text = encode_prompts(parts, PROMPTS)
        noise = controlled_noise_prediction(parts, latents, torch.tensor([10, 900]), text, hint)
        image = parts.vae.decode(parts.vae.encode(hint * 2 - 1).latent_dist.mean).sample
    return noise, image, text


def test_ldm_names_match_diffusers_converters(tiny_sd):
    """Our ldm layout, read back by diffusers' own single-file converters, gives every module key and value."""
    parts, _, _ = tiny_sd
    state = to_ldm_state_dict(parts)
    config = lambda module: dict(module.config)  # noqa: E731
    converted = {"unet": single_file_utils.convert_ldm_unet_checkpoint(state, config(parts.unet)),
                 "controlnet": single_file_utils.convert_controlnet_checkpoint(state, config(parts.controlnet)),
                 "vae": single_file_utils.convert_ldm_vae_checkpoint(state, config(parts.vae)),
                 "text_encoder": single_file_utils.convert_ldm_clip_checkpoint(state)}
    for name, theirs in converted.items():
        own = {k: v for k, v in getattr(parts, name).state_dict().items() if not k.endswith("position_ids")}
        assert set(theirs) == set(own), name
        assert all(torch.equal(theirs[k].reshape(own[k].shape), own[k]) for k in own), name


def test_ldm_checkpoint_loads_with_same_outputs(tiny_sd, tmp_path):
    parts, _, ckpt = tiny_sd
    expected = outputs(parts)
    loaded = load_parts(ckpt, architecture="tiny")
    for ours, theirs in zip(outputs(loaded), expected):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    # AttentionHand's own module name for the ControlNet (VAS.*) and a bare state dict load the same way
    state = {k.replace("control_model.", "VAS."): v for k, v in to_ldm_state_dict(parts).items()}
    torch.save(state, tmp_path / "vas.ckpt")
    torch.testing.assert_close(outputs(load_parts(tmp_path / "vas.ckpt", architecture="tiny"))[0], expected[0], rtol=0, atol=1e-6)


def test_ldm_checkpoint_errors(tiny_sd):
    parts, _, ckpt = tiny_sd
    state = to_ldm_state_dict(parts)
    fresh = load_parts(ckpt, architecture="tiny")
    broken = dict(state)
    del broken["model.diffusion_model.input_blocks.1.1.proj_in.weight"]
    with pytest.raises(CheckpointError, match="unet weight.*missing.*input_blocks.1.1.proj_in"):
        load_ldm_state_dict(fresh, broken)
    with pytest.raises(CheckpointError, match="belong to no module.*model.diffusion_model.extra"):
        load_ldm_state_dict(fresh, {**state, "model.diffusion_model.extra.weight": torch.zeros(1)})
    wrong = {**state, "first_stage_model.quant_conv.weight": torch.zeros(3, 3)}
    with pytest.raises(CheckpointError, match="quant_conv.weight has shape"):
        load_ldm_state_dict(fresh, wrong)
    with pytest.raises(CheckpointError, match="both"):
        load_ldm_state_dict(fresh, {**state, "VAS.time_embed.0.weight": torch.zeros(1)})
    # schedule buffers are expected extras; a checkpoint without ControlNet starts it from the UNet (ControlNet's recipe)
    plain = {k: v for k, v in state.items() if not k.startswith("control_model.")}
    plain["alphas_cumprod"] = torch.ones(1000)
    load_ldm_state_dict(fresh, plain)
    torch.testing.assert_close(fresh.controlnet.down_blocks[0].resnets[0].conv1.weight, parts.unet.down_blocks[0].resnets[0].conv1.weight)
    assert float(fresh.controlnet.controlnet_mid_block.weight.detach().abs().max()) == 0.0


def test_unreadable_checkpoints_are_named(tmp_path):
    (tmp_path / "cut.ckpt").write_bytes(b"PK\x03\x04 not a whole zip")
    with pytest.raises(CheckpointError, match="cut.ckpt: cannot be read"):
        load_parts(tmp_path / "cut.ckpt", architecture="tiny")
    torch.save({"state_dict": {"a": torch.zeros(1)}, "epoch": 3}, tmp_path / "odd.ckpt")
    with pytest.raises(CheckpointError, match="odd.ckpt: 1 unet weight|odd.ckpt: .*missing"):
        load_parts(tmp_path / "odd.ckpt", architecture="tiny")


def test_missing_weights_say_what_and_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="sd15_ini.ckpt or attentionhand.ckpt"):
        load_parts(tmp_path / "weights" / "attentionhand.ckpt")
    (tmp_path / "sd").mkdir()
    with pytest.raises(FileNotFoundError, match="no unet/ folder"):
        load_parts(tmp_path / "sd")


def test_captured_maps_are_the_quarter_resolution_cross_attention(tiny_sd):
    parts, _, _ = tiny_sd
    text = encode_prompts(parts, PROMPTS)
    latents = torch.randn(2, 4, 16, 16)
    with torch.no_grad(), capture_cross_attention(parts.unet) as store:
        plain = parts.unet(latents, torch.tensor([500, 500]), encoder_hidden_states=text).sample
    heads = parts.unet.config.attention_head_dim
    assert len(store.maps) == 5  # down_blocks.2 (2 layers) + up_blocks.1 (3 layers), as SD1.5's 16x16 layers
    assert all(m.shape == (2, heads, 4 * 4, 77) for m in store.maps)
    torch.testing.assert_close(torch.stack(store.maps).sum(-1), torch.ones(5, 2, heads, 16))
    aggregated = store.aggregate(4, 4)
    assert aggregated.shape == (2, 4, 4, 77)
    torch.testing.assert_close(aggregated.sum(-1), torch.ones(2, 4, 4))
    with torch.no_grad():  # the default processors are back and give the same result
        torch.testing.assert_close(parts.unet(latents, torch.tensor([500, 500]), encoder_hidden_states=text).sample, plain)


def test_attend_and_excite_loss_on_known_maps():
    config = TextAttentionConfig()
    uniform = torch.full((4, 4, 77), 1 / 77)
    peaks = token_attention_peaks(uniform, [3], sigma=0.5)
    torch.testing.assert_close(peaks, torch.tensor([1 / 75]))  # softmax over the 75 text tokens of equal scores
    # one pixel attends only to token 2 (≈ all mass after softmax(100 a)), its neighbours are uniform (1/75 each);
    # the 3x3 Gaussian mixes them with its centre weight
    spike = torch.zeros(5, 5, 77)
    spike[2, 2, 2] = 1.0
    centre = 1 / (1 + 2 * math.exp(-1)) ** 2  # exp(-((x)/(2σ))²) with σ = 0.5 at x = ±1
    probability = math.exp(100) / (math.exp(100) + 74)
    torch.testing.assert_close(token_attention_peaks(spike, [2]), torch.tensor([centre * probability + (1 - centre) / 75]))
    loss = attend_and_excite_loss(torch.stack([uniform[:1, :1].expand(5, 5, 77), spike]), [[3], [2, 3]], config)
    torch.testing.assert_close(loss, torch.tensor((1 - 1 / 75) + (1 - 1 / 75)))  # the worse token of prompt 2 counts
    assert float(attend_and_excite_loss(spike[None], [[]], config)) == 0.0
    sizes = step_sizes(TextAttentionConfig(), 50)
    assert sizes[0] == 20.0 and math.isclose(sizes[-1], 20 * math.sqrt(0.5))


def test_text_attention_update_lowers_the_loss(tiny_sd):
    parts, _, _ = tiny_sd
    text = encode_prompts(parts, PROMPTS)
    positions = [hand_token_positions(parts.tokenizer, p) for p in PROMPTS]
    assert positions[1][:2] == [2, 3]  # "fingertips" -> finger + tips
    latents, timesteps = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1)), torch.tensor([500, 300])
    config = TextAttentionConfig(mode="paper", step_size=1000.0)
    updated, losses = text_attention_update(parts.unet, latents, timesteps, text, positions, config, iterations=4)
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.005
    final, _ = attention_loss_and_gradient(parts.unet, updated, timesteps, text, positions, config)
    assert float(final) < losses[-1]
    # the truncated pass gives the loss of a full UNet pass
    with torch.no_grad(), capture_cross_attention(parts.unet) as store:
        parts.unet(latents, timesteps, encoder_hidden_states=text)
    torch.testing.assert_close(attend_and_excite_loss(store.aggregate(4, 4), positions, config), torch.tensor(losses[0]))


def test_training_lowers_the_loss(tiny_sd, attentionhand_modalities):
    parts, folder, _ = tiny_sd
    config = AttentionHandTrainConfig(data=str(attentionhand_modalities), init_checkpoint=str(folder), image_size=128, batch_size=4,
                                      lr=2e-3)
    module = AttentionHandModule(config)
    data = module.datasets()
    assert len(data) == 8
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])

    def held_out_loss() -> float:
        generator = torch.Generator().manual_seed(123)
        with torch.no_grad():
            return sum(float(module.diffusion_losses(batch, generator, text_attention=False)["loss"]) for _ in range(3)) / 3

    before = held_out_loss()
    optimizer = module.configure_optimizers()
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {id(p) for p in module.controlnet.parameters()}
    frozen = module.unet.conv_out.weight.clone()
    torch.manual_seed(0)
    for _ in range(8):
        for start in (0, 4):
            loss = module.training_step({k: v[start:start + 4] for k, v in batch.items()}, 0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert module.last_text_attention_loss  # the fast stage ran
    after = held_out_loss()
    assert after < before - 0.05, (before, after)
    assert torch.equal(module.unet.conv_out.weight, frozen)

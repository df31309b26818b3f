#!/usr/bin/env bash
# Issue [2/5] equal-budget ablation: release 6's architecture (nafnet-small-deep, from release
# 6's weights) against release 6 plus global context (nafnet-ctx: the same blocks with FiLM from
# the whole photo's thumbnail; starts as exactly release 6), uniremoval-net (the fast network,
# warm-started from release 6 wherever names and shapes agree) and uniremoval-net without
# context (context_dim 0), all-in-one supervised (stage 1,
# ground-truth term only), same data (r7 ranges, scales 1-4, Garg & Nayar streaks, clean
# photos, whole-photo synthesis for every arm), same seed, steps and batch. Resumable: rerun.
# r6ctx_cam: r6ctx on r7 with a camera stage (noise, gamma, JPEG) after haze and rain.
# r6prior: release 6 behind the haze prior (haze-prior, prior frozen), from the model file
# PRIOR_MODEL that release7/hazephys/make_model.py writes (release 6's body + the trained prior).
# r6prior_r6data: r6prior on release 6's own data (r6 ranges, haze twice, no clean kind, scale 1,
# crops degraded alone as data_r6_vs_r7's "old" arm: whole 12 MP photos at scale 1 run at
# 2 images/s, and in training the prior reads the crop either way): r7 data cost release 6's
# body its rain on other generators (rain_fu), with or without the prior.
# r6prior_mix: r6prior's data (r7 whole-photo haze, blur and clean) with half the rain from
# release 6's ranges (kind rain6: RainParams' defaults, short thin procedural streaks) and half
# from r7's: r6prior lost 1.5 dB on the own (r6) rain pairs. 10 images a step (two tuples of
# five kinds), so STEPS=1600 sees as many images as r6prior's 2,000 x 8.
# r6prior_d: r6prior behind the phase-d prior (fog behind a clear foreground), PRIOR_MODEL set to
# that composite.
# r6prior_mix_cap: r6prior_mix with the prior's detail gain capped at 1.5 (haze-prior's
# detail_gain: sensor grain in a dense-haze sky is no longer multiplied by 1 / t, up to x5).
# r6prior_mix_cam: r6prior_mix with the camera stage after haze (noise, gamma, JPEG, 8 bits):
# the prior multiplies a real hazy sky's grain and 8-bit steps by 1 / t (up to x5), which
# r6prior_mix's body never saw (its haze was noise-free floats) and paints into blotches.
# r6prior_mix_cam_r6t: r6prior_mix_cam with release 6 itself as the teacher of blur and rain6
# (output distillation, weight 1, beside the ground truth): every fine-tune so far lost
# 0.35-0.94 dB on release 6's blur pairs and r6prior_mix still 0.63 on its rain pairs.
# r6prior_mix_cam_bt: r6prior_mix_cam's data with release 6 the teacher of blur alone (rain6's
# teacher brought test10's blotches back); run as a short continuation of r6prior_mix_cam
# (PRIOR_MODEL=.../models/r6prior_mix_cam.json STEPS=400).
# r6prior_mix_cam_kw: r6prior_mix_cam continued (PRIOR_MODEL=.../models/r6prior_mix_cam.json,
# STEPS=1600) with blur and rain6 weighted 2 (loss.kind_weights): recover release 6's rain and
# blur pairs without release 6's weights, which bring the painted skies back (_r6t, _bt).
# r6prior_mix_cam_s1: r6prior_mix_cam with run.seed 1 (other crops, kinds and degradations):
# does its smooth sky on the real panel hold beyond one seed?
# r7_cont_cam: release 7 continued (PRIOR_MODEL=src/uniremoval/models/default.json, STEPS=1600,
# run.seed 2: 16,000 new images) on r6prior_mix_cam's data with the camera stage after the r7
# rain too (real rainy photos are noisy JPEGs): does a longer run recover release 6's rain and
# blur pairs without release 6's weights or a heavier rain6 share (both paint skies)?
# r7_fft: r7_cont_cam (same data, seed, steps) plus the frequency reconstruction term
# (loss.fft_weight=2: L1 on the orthonormal spectrum, MIMO-UNet's term): a pixel L1 at this
# budget is met by returning a blurred photo or a faded streak layer; in the spectrum a missing
# band of high frequencies weighs as much as a tone error does in pixels. Its prior has release
# 7's shipped noise_detail 0.01 (r7_cont_cam ran before it was set). r7_fft8: the same with
# loss.fft_weight=8 (closer to MIMO-UNet's 0.1 on an unnormalised spectrum, 12.8 here at 128 px).
# r7_fft8_b6: r7_fft8 plus a kind blur6 (release 6's blur ranges: kernels to 31 px, no camera
# stage), 12 images a step (two tuples of six kinds): every r7 run so far smooths the texture of
# slightly blurred, noise-free photos (release 6's blur pairs: release 7 is 0.33 dB below the input).
# r7_b6: r7_fft8_b6 without the frequency term (it adds grain to real photos).
# r7_b6cam: r7_b6 with the camera's noise and JPEG after release 6's blur (a compound blur6cam:
# sensor noise p 0.6, JPEG p 0.5, as r7's camera stage), so the body learns to sharpen only
# what the noise allows (r7_b6's sharper blur came with grain on real photos).
# r7_grey: r7_cont_cam behind the prior with air_tint false (the airlight's learned correction
# moves its brightness only: the tinted one gives dense real haze a yellow cast), so the body
# learns the neutral skies that prior gives.
# r7_crop / r7_photo: r7_cont_cam's data and seed behind release 7's shipped prior (noise_detail
# 0.01), the prior reading each training crop alone (r7_crop, as every run before 2026-12-07) or
# the crop's whole degraded photo, cut to the crop after (r7_photo, data.prior_reads=photo: what
# the engine gives the body at inference).
# r6prior_mix_cam_photo: release 7's recipe (r6prior_mix_cam: release 6's body behind the phase-c
# prior, same data, seed and steps) with the prior reading each crop's whole photo.
# r6prior_b6_photo: r6prior_mix_cam_photo on r7_b6's data (release 6's blur ranges as a sixth kind, the
# camera stage after rain too; 12 images a step): r6prior_mix_cam_photo lost 0.46 dB on the own blur pairs.
# r6prior_b6_fp32_photo: r6prior_b6_photo in fp32 (run.amp=off): release 7 trained in fp32 on a Zen 3, every
# session-21+ arm in bf16 autocast on a Zen 4, and bf16 arms lose real-blur PIQE against release 7.
# r6prior_b6_s1_photo: r6prior_b6_photo with run.seed 1 (release 8's recipe, bf16): release 7's second seed
# painted test10's sky; do release 8's smooth skies hold beyond one seed?
# Usage: run.sh ARM...   (ARM: r6arch | r6ctx | r6ctx_cam | r6prior | r6prior_d | r6prior_r6data | r6prior_mix | r6prior_mix_cap | r6prior_mix_cam | r6prior_mix_cam_r6t | r6prior_mix_cam_bt | r6prior_mix_cam_kw | r6prior_mix_cam_s1 | r7_cont_cam | r7_fft | r7_fft8 | r7_fft8_b6 | r7_b6 | r7_b6cam | r7_grey | r7_crop | r7_photo | r6prior_mix_cam_photo | r6prior_b6_photo | r6prior_b6_fp32_photo | r6prior_b6_s1_photo | uninet | uninet_noctx; default: the first round's four)
set -euo pipefail
cd "$(dirname "$0")"
STEPS=${STEPS:-2000}
OUT=${OUT:-$HOME/.cache/uniremoval/arch_ablation}
M=$(cd ../../.. && pwd); U=$M/.venv/bin/uniremoval; D=${DATA:-$M/../shared/data}
common=(--config $M/benchmarks/results/data_r6_vs_r7/base.yaml --set run.steps=$STEPS
        --set data.images_per_step=8 --set data.val_count=0 --set run.val_every=100000
        --set "data.clean_dir=$D/clean/train" --set "data.val_dir=$D/clean/val"
        --set 'kinds=[haze, rain, blur, clean]' --set 'data.scales=[1, 4]' --set data.whole_photo=true)
# The first round's data: r7 as it was then, haze and rain without a camera stage after them.
nocam=(--set "data.degrade={kinds: {haze: {camera: null}, rain: {camera: null, streak_dir: $D/rain_streaks/garg06}}}")
# r7 with sensor noise, gamma and JPEG after the haze and the rain (camera.camera_finish).
cam=(--set "data.degrade={kinds: {rain: {streak_dir: $D/rain_streaks/garg06}}}")
R6=$M/src/uniremoval/models/release6.json
# r7 data (camera stage after haze and rain) plus release 6's blur as a sixth kind, blur6.
b6=(--set 'kinds=[haze, rain, rain6, blur, blur6, clean]' --set data.images_per_step=12
    --set "data.degrade={kinds: {rain: {streak_dir: $D/rain_streaks/garg06}, rain6: {base: rain}, blur6: {base: blur}}}")
b6cam=(--set 'kinds=[haze, rain, rain6, blur, blur6cam, clean]' --set data.images_per_step=12
    --set "data.degrade={kinds: {rain: {streak_dir: $D/rain_streaks/garg06}, rain6: {base: rain}, blur6: {base: blur}},
           compounds: {blur6cam: [{kind: blur6, p: 1.0}, {kind: camera_noise, p: 0.6}, {kind: camera_jpeg, p: 0.5}]}}")
mkdir -p "$OUT"
arms=("$@"); [ ${#arms[@]} -gt 0 ] || arms=(r6arch r6ctx uninet uninet_noctx)
for arm in "${arms[@]}"; do
  case $arm in
    r6arch) a=(--set model.arch=nafnet-small-deep --set "model.init=$R6" "${nocam[@]}") ;;
    r6ctx) a=(--set model.arch=nafnet-ctx --set "model.init=$R6" --set model.warm_start=true "${nocam[@]}") ;;
    r6ctx_cam) a=(--set model.arch=nafnet-ctx --set "model.init=$R6" --set model.warm_start=true "${cam[@]}") ;;
    uninet) a=(--set model.arch=uniremoval-net --set "model.init=$R6" --set model.warm_start=true "${nocam[@]}") ;;
    r6prior|r6prior_d) a=(--set model.arch=haze-prior --set 'model.args={body: nafnet-small-deep, body_args: {}}'
             --set "model.init=${PRIOR_MODEL:-$HOME/.cache/uniremoval/release7/models/r6_hazeprior.json}" "${nocam[@]}") ;;
    r6prior_r6data) a=(--set model.arch=haze-prior --set 'model.args={body: nafnet-small-deep, body_args: {}}'
             --set "model.init=${PRIOR_MODEL:-$HOME/.cache/uniremoval/release7/models/r6_hazeprior.json}"
             --set 'kinds=[haze, rain, blur]' --set 'data.scales=null' --set 'data.kind_mix={haze: 2}' --set 'data.degrade={preset: r6}' --set data.whole_photo=false) ;;
    r6prior_mix|r6prior_mix_cap|r6prior_mix_cam|r6prior_mix_cam_r6t|r6prior_mix_cam_bt|r6prior_mix_cam_kw|r6prior_mix_cam_s1|r7_cont_cam|r7_fft|r7_fft8|r7_fft8_b6|r7_b6|r7_b6cam|r7_grey|r7_crop|r7_photo|r6prior_mix_cam_photo|r6prior_b6_photo|r6prior_b6_fp32_photo|r6prior_b6_s1_photo) a=(--set model.arch=haze-prior
             --set "model.args={body: nafnet-small-deep, body_args: {}$([ $arm = r6prior_mix_cap ] && echo ', detail_gain: 1.5' || true)$([[ $arm = r7_fft* || $arm = r7_b6* || $arm = r7_grey || $arm = r7_crop || $arm = r7_photo ]] && echo ', noise_detail: 0.01' || true)$([ $arm = r7_grey ] && echo ', air_tint: false' || true)}"
             --set "model.init=${PRIOR_MODEL:-$HOME/.cache/uniremoval/release7/models/r6_hazeprior.json}"
             --set 'kinds=[haze, rain, rain6, blur, clean]' --set data.images_per_step=10
             --set "data.degrade={kinds: {haze: {$([[ $arm = r6prior_mix_cam* || $arm = r7_cont_cam || $arm = r7_fft* || $arm = r7_grey || $arm = r7_crop || $arm = r7_photo ]] || echo 'camera: null')}, rain: {$([[ $arm = r7_cont_cam || $arm = r7_fft* || $arm = r7_grey || $arm = r7_crop || $arm = r7_photo ]] || echo 'camera: null, ')streak_dir: $D/rain_streaks/garg06}, rain6: {base: rain}}}") ;;
    uninet_noctx) a=(--set model.arch=uniremoval-net --set "model.init=$R6" --set model.warm_start=true --set 'model.args={context_dim: 0}' "${nocam[@]}") ;;
    *) echo "unknown arm $arm" >&2; exit 2 ;;
  esac
  case $arm in
    r6prior_mix_cam_r6t) a+=(--set loss.out_weight=1.0 --set "teachers={blur: $R6, rain6: $R6}" --set 'untaught=[haze, rain, clean]') ;;
    r6prior_mix_cam_kw) a+=(--set 'loss.kind_weights={rain6: 2.0, blur: 2.0}') ;;
    r6prior_mix_cam_bt) a+=(--set loss.out_weight=1.0 --set "teachers={blur: $R6}" --set 'untaught=[haze, rain, rain6, clean]') ;;
    r6prior_mix_cam_s1) a+=(--set run.seed=1) ;;
    r7_cont_cam|r7_grey) a+=(--set run.seed=2) ;;
    r7_fft) a+=(--set run.seed=2 --set loss.fft_weight=2.0) ;;
    r7_fft8) a+=(--set run.seed=2 --set loss.fft_weight=8.0) ;;
    r7_fft8_b6) a+=(--set run.seed=2 --set loss.fft_weight=8.0 "${b6[@]}") ;;
    r7_b6) a+=(--set run.seed=2 "${b6[@]}") ;;
    r7_b6cam) a+=(--set run.seed=2 "${b6cam[@]}") ;;
    r7_crop|r7_photo) a+=(--set run.seed=2) ;;
    r6prior_b6_photo) a+=("${b6[@]}") ;;
    r6prior_b6_fp32_photo) a+=("${b6[@]}" --set run.amp=off) ;;
    r6prior_b6_s1_photo) a+=("${b6[@]}" --set run.seed=1) ;;
  esac
  # Every haze-prior arm before r7_photo trained with the prior reading the crop (the default until
  # 2026-12-07), so they keep it and stay reproducible; *_photo arms give the body the crop of the
  # prior's output on the whole photo, as the engine does.
  [[ $arm = *photo ]] && a+=(--set data.prior_reads=photo) || a+=(--set data.prior_reads=crop)
  $U train transfer "${common[@]}" "${a[@]}" --set run.out_dir=$OUT/$arm 2>&1 | tee -a $OUT/$arm.log
done

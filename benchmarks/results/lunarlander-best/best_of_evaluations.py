"""LunarLander-v3, the plain A3C preset to 1M steps (no stop at the threshold), an EvalCallback of
10 greedy episodes every 25k steps keeping the best model; then the final model's score (the
trainer's final evaluation, 20 episodes) and the kept model's over 20 fresh greedy episodes.

Usage: python best_of_evaluations.py SEED  (prints one JSON line)
"""

import json
import sys

from a3c import A3C, EvalCallback, load

EVAL_FREQ = 25_000

if __name__ == "__main__":
    seed = int(sys.argv[1])
    run = f"runs/lunarlander-best-s{seed}"
    evaluator = EvalCallback(eval_freq=EVAL_FREQ, n_eval_episodes=10)
    model = A3C("LunarLander-v3", seed=seed, total_steps=1_000_000, target_return=None, verbose=0,
                eval_interval=0, final_eval_episodes=20)
    model.learn(callback=evaluator, run_dir=run)
    kept = load(f"{run}/best_model.safetensors", verbose=0).evaluate(episodes=20, seed=900_000 + seed)
    print(json.dumps(dict(
        seed=seed, freq=EVAL_FREQ, final=model.last_result.final_eval.mean_return,
        best_eval=round(evaluator.best_mean_reward, 1), best_fresh20=round(kept.mean_return, 1),
        curve=[(steps, round(r.mean_return, 1)) for steps, r in evaluator.evaluations])), flush=True)

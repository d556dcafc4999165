"""The study's vocabulary: every attribute name aqsvit writes on a study or trial, and every value
of ``pruned_by``. The search writes them; the samplers, the report, the dashboard and fine-tuning
read them. One module of plain constants (no imports), so a reader never spells a name again and
no layer reaches into another for one.
"""
from __future__ import annotations

# -- study user attrs --------------------------------------------------------------------------
CONTEXT_ATTR = "aqsvit:context"              # model, data, delta, FP accuracy, tau, sampler: the dashboard's note
FINGERPRINT_ATTR = "aqsvit:fingerprint"      # what makes two runs' trials comparable (checked on resume)

# -- trial system attrs (set by the sampler or the worker) -------------------------------------
KEY_ATTR = "aqsvit:key"                      # the stepwise sampler's key of the trial's assignment
IDLE_ATTR = "aqsvit:idle"                    # a trial a worker ran while it had nothing to evaluate (not a result)
VERIFY_ATTR = "aqsvit:verify"                # the sampler asks for a verification on the whole split
PROBE_ATTR = "aqsvit:probe"                  # the sampler wants only the sensitivity of this assignment (first batch)
DELTA_ATTR = "aqsvit:delta"                  # the delta of the front's walk that claimed this trial: measured against it
HEARTBEAT_ATTR = "aqsvit:heartbeat"          # the worker's last sign of life (journal storages)
FIXED_PARAMS_ATTR = "fixed_params"           # Optuna's own: the params of an enqueued trial
DASHBOARD_CONSTRAINTS = "constraints"        # the list form optuna-dashboard 0.21 reads (Optuna reads it as "0", "1"...)

# -- prefixes of KEY_ATTR ----------------------------------------------------------------------
VERIFY_PREFIX = "verify:"                    # the key of a verification of an assignment
PROBE_PREFIX = "probe:"                      # the key of a probe of an assignment
AT_PREFIX = "at "                            # "at <delta>:<key>": an assignment claimed by a front's walk for that delta

# -- trial user attrs (set by the objective) ---------------------------------------------------
ACCURACY_ATTR = "accuracy"                   # test accuracy (%) of a finished evaluation
DROP_ATTR = "drop"                           # FP accuracy minus accuracy (points; a lower bound when stopped)
ERRORS_ATTR = "errors"                       # wrong answers seen by the staged evaluation
BUDGET_ATTR = "budget"                       # wrong answers the constraint allows on the whole split
SCREENED_ATTR = "screened"                   # decided on the screen only: its accuracy is an upper bound
VERIFIED_ATTR = "verified"                   # measured on the whole split as a verification
PRUNED_BY_ATTR = "pruned_by"                 # why the trial stopped early (one of the PRUNED_BY values below)
IMAGES_ATTR = "images"                       # images the trial ran (calibration and evaluation)
MACS_ATTR = "macs"                           # multiply-accumulates the trial ran
SECONDS_ATTR = "seconds"                     # the trial's wall time
SENSITIVITY_ATTR = "sensitivity"             # a probe's KL divergence from the probes' base
DRIFT_ATTR = "drift"                         # the pruner's drift definition after the last calibration step
DRIFT_ALL_ATTR = "drift_all"                 # every drift definition after the last calibration step
DRIFT_LAYERS_ATTR = "drift_layers"           # the drift per layer after the last calibration step
DRIFT_STEPS_ATTR = "drift_steps"             # the drift after each calibration step (the pruner replays it)
MEASURED_BY_ATTR = "measured_by"             # a trial measured outside the objective: where
COST_ATTRS = ("memory_bytes", "model_compression", "weight_compression", "effective_bits",
              "energy_nj")                   # the assignment's cost figures, one attr each

# -- values of PRUNED_BY_ATTR ------------------------------------------------------------------
CALIBRATION_ACCURACY = "calibration accuracy"  # the calibration answers already rule the constraint out
DRIFT_GATE = "drift"                         # the drift exceeded the threshold tau
OUTRANKED = "outranked"                      # the drift lost every place the candidate could take (beam ties)
PROBED = "probe"                             # a probe, stopped on purpose once its sensitivity was measured
STAGED_ACCURACY = "staged accuracy"          # the staged evaluation saw more errors than the budget
TARGET_GATE = "target"                       # a scheme and width the hardware target cannot store (Optuna's samplers)

# -- values ------------------------------------------------------------------------------------
SCREEN_ONLY = 1.0  # the dashboard's second constraint of a result decided on the screen only: apart from the front

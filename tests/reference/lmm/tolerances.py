"""Every tolerance of the linear mixed model reference tests, in one place.

Differences to lme4/lmerTest/pbkrtest are dominated by R's optimiser stopping
(θ agrees to ~1e-7), not by trialkit, which solves the REML equations to
machine precision.
"""

# fixed effects: relative to max(|beta|, SE(beta)) (a coefficient near 0 has no
# meaningful relative error)
FIXED_REL = 1e-6
# variance components, absolute
VARCOMP_ABS = 1e-4
# REML / ML log-likelihood, absolute
LOGLIK_ABS = 1e-6
# Kenward-Roger adjusted SE and df, relative
KR_SE_REL = 1e-6
KR_DF_REL = 1e-6
# model-based covariance of beta, relative to the diagonal scale
VCOV_REL = 1e-6
# Satterthwaite df, absolute
SATT_DF_ABS = 1e-4
# multi-row KR F statistic, ddf and scale, relative
KR_F_REL = 1e-6
# batched vs one-at-a-time fits
BATCH_ABS = 1e-10
# CR2 SE and Satterthwaite df of the LMM fixed effects vs clubSandwich (relative);
# the working model depends on the variance components, so R's optimiser error enters
CR2_REL = 1e-6

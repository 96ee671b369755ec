"""Tolerances of the GLMM-scaling reference tests (glmer with tolPwrss = 1e-13)."""

# against glmer on scale(caseload), back-transformed (R's best optimum)
BETA_REL = 1e-5  # relative to max(|beta|, SE)
THETA_ABS = 1e-5
LOGLIK_ABS = 1e-8
SE_REL = 1e-4  # both sides use finite-difference Hessians
# against glmer on the raw caseload: bobyqa stops less precisely ("Rescale variables?")
BETA_REL_UNSCALED = 1e-4
LOGLIK_ABS_UNSCALED = 1e-7
# a boundary fit: theta below lme4's isSingular tolerance
SINGULAR_THETA = 1e-4

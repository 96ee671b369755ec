"""Tolerances of the fit-option reference tests (ML + Kenward–Roger vs pbkrtest, containment df)."""

# relative, as tests/reference/lmm/tolerances.py (R's optimiser stopping dominates)
KR_SE_REL = 1e-6
KR_DF_REL = 1e-6
KR_F_REL = 1e-6
FIXED_REL = 1e-6
LOGLIK_ABS = 1e-6
VARCOMP_ABS = 1e-4
# containment df are integers: exact

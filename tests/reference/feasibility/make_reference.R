# Reference values for trialkit.models.proportion (feasibility outcomes and progression tests).
# Requires survey and jsonlite. Run from this directory:  Rscript make_reference.R
#
# Clustered cases: per-LA counts (y events out of n units) are expanded to one row per unit,
# analysed as a one-stage cluster design svydesign(ids = ~la, data = rows) and summarised by
#   svyciprop(~y, des, method = "logit", df = degf(des), level = 0.95)   (interval)
#   SE(svymean(~y, des))                                                  (design-based SE)
#   svyglm(y ~ 1, des, family = quasibinomial): t = (b - qlogis(red)) / se(b) on degf df
#                                               (one-sided test against the red limit)
# Exact cases: binom.test(x, n) (Clopper-Pearson) and binom.test(x, n, red, alternative).
# Cluster-mean cases: t.test(v, mu = red, alternative) and the 95% t interval.
suppressPackageStartupMessages({library(survey); library(jsonlite)})

clustered <- list(
  equal_sizes = list(y = c(14, 15, 12, 17, 13, 16, 11, 15, 14, 18, 12, 16),
                     n = rep(20, 12), red = 0.6, higher = TRUE),
  unequal_sizes = list(y = c(2, 5, 9, 14, 20, 31, 3, 7, 18, 25, 40, 12),
                       n = c(3, 8, 15, 22, 30, 58, 6, 10, 27, 41, 60, 19), red = 0.5, higher = TRUE),
  extreme_high = list(y = c(25, 30, 18, 22, 27, 19, 24, 31, 20, 28, 23, 17),
                      n = c(25, 30, 18, 23, 27, 19, 24, 31, 21, 28, 23, 17), red = 0.9, higher = TRUE),
  rare_lower_better = list(y = c(0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 0, 3),
                           n = c(12, 15, 9, 20, 18, 11, 14, 16, 10, 13, 17, 22), red = 0.1,
                           higher = FALSE),
  six_clusters = list(y = c(30, 22, 41, 18, 27, 35), n = c(40, 37, 50, 31, 33, 52), red = 0.65,
                      higher = TRUE)
)
out <- list(clustered = list(), exact = list(), cluster_mean = list())
for (nm in names(clustered)) {
  cs <- clustered[[nm]]
  rows <- do.call(rbind, lapply(seq_along(cs$n), function(j)
    data.frame(la = j, y = c(rep(1, cs$y[j]), rep(0, cs$n[j] - cs$y[j])))))
  des <- svydesign(ids = ~la, data = rows, weights = ~1)
  ci <- svyciprop(~y, des, method = "logit", df = degf(des), level = 0.95)
  m <- svyglm(y ~ 1, des, family = quasibinomial(),
              control = glm.control(epsilon = 1e-14, maxit = 100))
  b <- unname(coef(m)[1]); seb <- unname(sqrt(vcov(m)[1, 1]))
  tt <- (b - qlogis(cs$red)) / seb
  p <- pt(tt, degf(des), lower.tail = !cs$higher)
  out$clustered[[nm]] <- list(
    y = cs$y, n = cs$n, red = cs$red, higher_is_better = cs$higher,
    estimate = as.numeric(ci), conf_low = as.numeric(attr(ci, "ci")[1]),
    conf_high = as.numeric(attr(ci, "ci")[2]), std_error = as.numeric(SE(svymean(~y, des))),
    std_error_logit = seb, df = degf(des), statistic = tt, p_value = p)
}
exact <- list(
  recruitment = list(x = 12, n = 19, red = 0.4, higher = TRUE),
  all_recruited = list(x = 12, n = 12, red = 0.5, higher = TRUE),
  none_contaminated = list(x = 0, n = 6, red = 0.5, higher = FALSE),
  some_contaminated = list(x = 2, n = 6, red = 0.5, higher = FALSE),
  fidelity_share = list(x = 4, n = 6, red = 0.5, higher = TRUE)
)
for (nm in names(exact)) {
  cs <- exact[[nm]]
  bt <- binom.test(cs$x, cs$n)
  bp <- binom.test(cs$x, cs$n, p = cs$red, alternative = if (cs$higher) "greater" else "less")
  out$exact[[nm]] <- list(x = cs$x, n = cs$n, red = cs$red, higher_is_better = cs$higher,
                          estimate = cs$x / cs$n, conf_low = bt$conf.int[1],
                          conf_high = bt$conf.int[2], p_value = bp$p.value)
}
means <- list(
  fidelity_index = list(v = c(0.91, 0.78, 0.85, 0.62, 0.88, 0.95), red = 0.6, higher = TRUE),
  low_index = list(v = c(0.41, 0.55, 0.38, 0.62, 0.47, 0.5), red = 0.5, higher = TRUE)
)
for (nm in names(means)) {
  cs <- means[[nm]]
  t2 <- t.test(cs$v)
  t1 <- t.test(cs$v, mu = cs$red, alternative = if (cs$higher) "greater" else "less")
  rows <- data.frame(la = seq_along(cs$v), v = cs$v)
  des <- svydesign(ids = ~la, data = rows, weights = ~1)
  out$cluster_mean[[nm]] <- list(v = cs$v, red = cs$red, higher_is_better = cs$higher,
                                 estimate = mean(cs$v), conf_low = t2$conf.int[1],
                                 conf_high = t2$conf.int[2],
                                 std_error = as.numeric(SE(svymean(~v, des))),
                                 statistic = unname(t1$statistic), p_value = t1$p.value)
}
out$versions <- list(R = R.version.string, survey = as.character(packageVersion("survey")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "reference.json")

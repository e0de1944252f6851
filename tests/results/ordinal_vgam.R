# Golden values for the unpenalised non-parallel cumulative logit (PRESTO with
# alpha = 0): R VGAM vglm(cumulative(parallel = FALSE)).
#
# VGAM's cumulative() with the default logitlink models
#   logit P(Y <= j | x) = intercept_j + x' beta_j,
# the same sign convention as weightstats.ordinal (coef_[j] = beta_j).
#
# Run from the repository root (R 4.2.2, VGAM 1.1-7 produced the stored file):
#   Rscript tests/results/ordinal_vgam.R
# Writes tests/results/ordinal_vgam_results.csv with one row per parameter.

suppressPackageStartupMessages(library(VGAM))

here <- "tests/results"
rows <- list()

collect <- function(fit, dataset, K, features) {
  cf <- coef(fit)  # (Intercept):1..K-1, then x:1..K-1 for each x
  out <- data.frame()
  for (j in 1:(K - 1)) {
    out <- rbind(out, data.frame(dataset = dataset, boundary = j - 1, term = "intercept",
                                 value = cf[[sprintf("(Intercept):%d", j)]]))
    for (f in features) {
      out <- rbind(out, data.frame(dataset = dataset, boundary = j - 1, term = f,
                                   value = cf[[sprintf("%s:%d", f, j)]]))
    }
  }
  out <- rbind(out, data.frame(dataset = dataset, boundary = -1, term = "loglik",
                               value = logLik(fit)))
  out
}

ctrl <- vglm.control(epsilon = 1e-12, maxit = 200)

ucla <- read.csv(file.path(here, "ologit_ucla.csv"))
ucla$apply <- factor(ucla$apply, levels = c("unlikely", "somewhat likely", "very likely"),
                     ordered = TRUE)
fit_ucla <- vglm(apply ~ pared + public + gpa, cumulative(parallel = FALSE), data = ucla,
                 control = ctrl)
rows[[1]] <- collect(fit_ucla, "ucla", 3, c("pared", "public", "gpa"))

syn <- read.csv(file.path(here, "ordinal_synthetic.csv"))
syn$y <- factor(syn$y, levels = 1:4, ordered = TRUE)
fit_syn <- vglm(y ~ x1 + x2 + x3, cumulative(parallel = FALSE), data = syn, weights = w,
                control = ctrl)
rows[[2]] <- collect(fit_syn, "synthetic_weighted", 4, c("x1", "x2", "x3"))

result <- do.call(rbind, rows)
write.csv(result, file.path(here, "ordinal_vgam_results.csv"), row.names = FALSE)
options(digits = 12)
print(result)
cat(sprintf("R %s, VGAM %s\n", getRversion(), packageVersion("VGAM")))

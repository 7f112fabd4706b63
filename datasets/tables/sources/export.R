# Export the R-packaged tables added by issue 23 to CSV (target last, NA as empty cells), with a
# manifest row each. Run with Debian's R and data packages:
#   apt-get install r-base-core r-cran-mlbench r-cran-kernlab r-cran-modeldata r-cran-cardata r-cran-caret
#   Rscript datasets/tables/sources/export.R OUT_DIR && npx tsx scripts/import-tables.ts OUT_DIR
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[[1]] else "tables-extra"
dir.create(out, showWarnings = FALSE, recursive = TRUE)
ver <- function(p) paste0("r-cran-", tolower(p), " ", as.character(packageVersion(p)))
uci <- "UCI data; CC BY 4.0"
tables <- list(
  # (modeldata's grants, 8190 x 1502, is left out: 50 MB as Arrow, too large for the repository.)
  # name, package, data file, object, target column (or "=OBJECT": a separate class vector), origin, license, OpenML id, in CC18
  list("sonar", "mlbench", "Sonar", "Sonar", "Class", "Connectionist Bench Sonar (UCI)", uci, "40", "no"),
  list("vehicle", "mlbench", "Vehicle", "Vehicle", "Class", "StatLog Vehicle Silhouettes (UCI)", uci, "54", "yes"),
  list("zoo", "mlbench", "Zoo", "Zoo", "type", "Zoo (UCI)", uci, "62", "no"),
  list("spam", "kernlab", "spam", "spam", "type", "Spambase (UCI)", uci, "44", "yes"),
  list("attrition", "modeldata", "attrition", "attrition", "Attrition", "IBM Watson HR employee attrition sample", "modeldata: MIT", "", "no"),
  list("telco-churn", "modeldata", "wa_churn", "wa_churn", "churn", "IBM Watson telco customer churn sample", "modeldata: MIT", "", "no"),
  list("hpc", "modeldata", "hpc_data", "hpc_data", "class", "HPC job scheduling (Kuhn and Johnson 2013)", "modeldata: MIT", "", "no"),
  list("lending-club", "modeldata", "lending_club", "lending_club", "Class", "Lending Club loans, 2016 Q1 (public data)", "modeldata: MIT", "", "no"),
  list("oils", "modeldata", "oils", "oils", "class", "Edible oil fatty acids (Brodnjak-Voncina et al. 2005)", "modeldata: MIT", "", "no"),
  list("scat", "modeldata", "scat", "scat", "Species", "Carnivore scat (Reid 2015)", "modeldata: MIT", "", "no"),
  list("stackoverflow", "modeldata", "stackoverflow", "stackoverflow", "Remote", "Stack Overflow developer survey 2018", "ODbL (Stack Overflow survey) via modeldata", "", "no"),
  list("german-credit", "caret", "GermanCredit", "GermanCredit", "Class", "Statlog German Credit (UCI), one-hot as in caret", uci, "", "no"),
  list("dhfr", "caret", "dhfr", "dhfr", "Y", "DHFR inhibition descriptors (Sutherland et al. 2004)", "caret: GPL (>= 2)", "", "no"),
  list("mdrr", "caret", "mdrr", "mdrrDescr", "=mdrrClass", "Multidrug resistance reversal descriptors (Svetnik et al. 2003)", "caret: GPL (>= 2)", "", "no"),
  list("cox2", "caret", "cox2", "cox2Descr", "=cox2Class", "COX-2 inhibition descriptors (Sutherland et al. 2003)", "caret: GPL (>= 2)", "", "no"),
  list("mroz", "carData", "Mroz", "Mroz", "lfp", "Female labor force participation (Mroz 1987)", "carData: GPL (>= 2)", "", "no"),
  list("titanic", "carData", "TitanicSurvival", "TitanicSurvival", "survived", "Titanic passengers (Harrell, Encyclopedia Titanica)", "carData: GPL (>= 2)", "", "no"),
  list("chile", "carData", "Chile", "Chile", "vote", "Chilean plebiscite poll 1988 (FLACSO)", "carData: GPL (>= 2)", "", "no"),
  list("wells", "carData", "Wells", "Wells", "switch", "Bangladesh arsenic wells (Gelman and Hill 2007)", "carData: GPL (>= 2)", "", "no")
)
rows <- list()
for (t in tables) {
  name <- t[[1]]; pkg <- t[[2]]; file <- t[[3]]; obj <- t[[4]]; target <- t[[5]]
  if (!requireNamespace(pkg, quietly = TRUE)) { message("skip ", name, ": package ", pkg, " missing"); next }
  e <- new.env()
  ok <- tryCatch({ utils::data(list = file, package = pkg, envir = e); exists(obj, envir = e) }, warning = function(w) FALSE, error = function(err) FALSE)
  if (!ok) { message("skip ", name, ": ", pkg, " has no dataset ", obj); next }
  d <- as.data.frame(get(obj, envir = e))
  if (startsWith(target, "=")) {
    d$class <- get(substring(target, 2), envir = e)
    target <- "class"
  }
  if (!(target %in% names(d))) stop(name, ": no column ", target, " (columns: ", paste(names(d), collapse = ", "), ")")
  # Row names that are identifiers (TitanicSurvival's passenger names) are not features; drop id-like columns.
  d <- d[, c(setdiff(names(d), target), target)]
  for (c in names(d)) if (is.logical(d[[c]])) d[[c]] <- ifelse(is.na(d[[c]]), NA, ifelse(d[[c]], "yes", "no"))
  d[[target]] <- as.character(d[[target]])
  d <- d[!is.na(d[[target]]), ]
  feats <- setdiff(names(d), target)
  categorical <- sum(sapply(feats, function(c) !is.numeric(d[[c]])))
  utils::write.csv(d, file.path(out, paste0(name, ".csv")), row.names = FALSE, na = "")
  rows[[length(rows) + 1]] <- data.frame(name = name, file = paste0(name, ".csv"), target = target, rows = nrow(d), features = length(feats),
    categorical = categorical, classes = length(unique(d[[target]])), missing_cells = sum(is.na(d[, feats])), package = ver(pkg),
    origin = t[[6]], license = t[[7]], openml_id = t[[8]], in_openml_cc18 = t[[9]], stringsAsFactors = FALSE)
  message(name, ": ", nrow(d), " rows, ", length(feats), " features")
}
utils::write.csv(do.call(rbind, rows), file.path(out, "manifest.csv"), row.names = FALSE, na = "")

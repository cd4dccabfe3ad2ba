"""Column layouts of the tables the benchmarks read, with no heavy imports, so that `--help`
can show them (and bad arguments fail) before pandas, scipy or TensorFlow load."""
from __future__ import annotations

SNP_COLUMNS = {"chrom": ("chrom", "#chrom", "chr", "chromosome", "contig", "seqnames", "chr_hg19"),
               "pos": ("pos", "position", "bp", "pos_hg19", "start_1based"),
               "ref": ("ref", "reference", "ref_allele"),
               "alt": ("alt", "alternate", "alternative", "alt_allele"),
               "variant_id": ("variant_id", "id", "rsid", "snp", "snp_id", "name")}

TABLE_COLUMNS = ("variant_id", "chrom", "pos", "oligo_ref", "oligo_alt", "log2fc_observed",
                 "emvar", "active")
FORMATS = ("auto", "oligos", "emvar", "allelic", "barcode")
EMVAR_COLUMNS = {"variant_id": ("variant_id", "id", "rsid", "snp", "snp_id", "name"),
                 "chrom": ("chrom", "#chrom", "chr", "chromosome", "seqnames"),
                 "pos": ("pos", "position", "bp", "start_1based"),
                 "ref": ("ref", "ref_allele", "reference"),
                 "alt": ("alt", "alt_allele", "alternative"),
                 "log2fc_observed": ("log2fc_observed", "log2fc", "logfc", "skew", "log2_skew",
                                     "log2_allelic_skew"),
                 "emvar": ("emvar", "is_emvar"),
                 "active": ("active", "is_active"),
                 "oligo_ref": ("oligo_ref",), "oligo_alt": ("oligo_alt",)}


def snp_columns_help() -> str:
    """The SNP-list column mapping, for --help texts."""
    return "; ".join(f"{k}: {'/'.join(v)}" for k, v in SNP_COLUMNS.items())


def mpra_format_help() -> str:
    """The MPRA table layouts, for --help."""
    em = "; ".join(f"{k}={'/'.join(v)}" for k, v in EMVAR_COLUMNS.items() if not k.startswith("oligo"))
    return ("oligos: variant_id chrom pos oligo_ref oligo_alt log2fc_observed emvar active. "
            f"emvar: {em} (any case). allelic: snp_id + DNA_allele_A_1.. RNA_allele_B_1.. "
            "(Tewhey 2016 / mpra allelic MPRASet, A = ref). barcode: variant_id allele(ref/alt) "
            "barcode DNA1.. RNA1.. (Ulirsch 2016 / mpra barcode example).")

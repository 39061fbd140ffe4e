#!/usr/bin/perl
# find-plaintext.pl VIDEO.h264 IMAGE: exits 1 if any NAL unit of the decrypted Annex-B
# VIDEO appears on the raw disk IMAGE. Each NAL of 80 bytes or more gives one marker, its
# bytes 16..80 (past the header, inside the coded data, which is the encoder's output and
# nothing else writes); short NALs are skipped (a handful of bytes could occur by chance).
# Prints "markers N" (how many were searched).
use strict;
use warnings;
my ($video, $image) = @ARGV;
sub slurp { my ($p) = @_; open(my $f, '<:raw', $p) or die "$p: $!"; local $/; my $d = <$f>; return $d // '' }
my $v = slurp($video);
my $img = slurp($image);
my %seen;
my @markers;
for my $nal (split /\x00\x00\x01/, $v) {
    next if length($nal) < 80;
    my $m = substr($nal, 16, 64);
    next if $seen{$m}++;
    push @markers, $m;
}
die "no marker in $video: the video is empty\n" unless @markers;
my $found = 0;
for my $m (@markers) {
    my $at = index($img, $m);
    if ($at >= 0) { printf "plaintext at byte %d of %s\n", $at, $image; $found++; }
}
print "markers ", scalar(@markers), " found $found\n";
exit($found ? 1 : 0);
